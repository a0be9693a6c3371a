"""Open the diary in a real headless browser and check what a reader would meet.

The system Chromium (Debian's ``chromium`` + ``chromium-driver``) is driven through
Selenium. The check loads the page (from ``file://``, or served over HTTP on localhost),
then: every link and embedded resource resolves (files exist; same-host HTTP answers
below 400; images decode), every video's metadata loads in the browser (duration > 0,
a frame size), and a screenshot of the whole page is saved. Links to other hosts are
listed, and fetched only when asked (this machine may be offline).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wav2kp.atomic import atomic_path
from wav2kp.report.diary import VIDEO_SUFFIXES

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver",)
# Headless, and no background traffic: on a closed network Chromium otherwise keeps
# retrying its update, sync and QUIC connections.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
)
WINDOW_WIDTH = 1280
MAX_SCREENSHOT_HEIGHT = 12000
INSTALL_HINT = "apt-get install chromium chromium-driver"

# Everything the page points at, as absolute URLs (the browser resolves them).
_COLLECT_JS = """
const out = [];
const add = (kind, el, url) => { if (url) out.push([kind, url, el.tagName.toLowerCase()]); };
document.querySelectorAll('a[href]').forEach(el => add('link', el, el.href));
document.querySelectorAll('img[src]').forEach(el => add('image', el, el.currentSrc || el.src));
document.querySelectorAll('video[src], video source[src], audio[src]').forEach(
  el => add('media', el, el.src));
document.querySelectorAll('video[poster]').forEach(el => add('image', el, el.poster));
document.querySelectorAll('link[href], script[src], iframe[src]').forEach(
  el => add('resource', el, el.href || el.src));
return out;
"""
_BROKEN_IMAGES_JS = """
return Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => img.currentSrc || img.src);
"""
_VIDEO_METADATA_JS = """
const [url, timeoutMs, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const video = document.createElement('video');
video.preload = 'metadata';
video.muted = true;
const timer = setTimeout(() => done({error: 'timed out loading metadata'}), timeoutMs);
video.onloadedmetadata = () => { clearTimeout(timer);
  done({duration: video.duration, width: video.videoWidth, height: video.videoHeight}); };
video.onerror = () => { clearTimeout(timer);
  const e = video.error; done({error: e ? `media error ${e.code}: ${e.message}` : 'error'}); };
video.src = url;
"""


def find_browser() -> tuple[str, str] | None:
    """(browser, driver) executables: $WAV2KP_CHROMIUM / $WAV2KP_CHROMEDRIVER, else the
    first on PATH; None when either is missing."""
    browser = os.environ.get("WAV2KP_CHROMIUM") or next(
        (found for name in BROWSERS if (found := shutil.which(name))), None
    )
    driver = os.environ.get("WAV2KP_CHROMEDRIVER") or next(
        (found for name in DRIVERS if (found := shutil.which(name))), None
    )
    return (browser, driver) if browser and driver else None


def missing_browser_reason() -> str | None:
    """Why the check cannot run here (one line), or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it is in requirements.lock: make setup)"
    if find_browser() is None:
        return f"no Chromium and chromedriver on PATH ({INSTALL_HINT})"
    return None


@dataclass
class BrowserCheck:
    page: str
    browser: str = ""
    links: list[str] = field(default_factory=list)
    broken_links: list[dict[str, str]] = field(default_factory=list)
    external_links: list[str] = field(default_factory=list)  # other hosts, not fetched
    videos: list[dict[str, Any]] = field(default_factory=list)
    bad_videos: list[dict[str, Any]] = field(default_factory=list)
    screenshot: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.broken_links and not self.bad_videos

    def summary(self) -> str:
        """One line for the console."""
        text = (
            f"{len(self.links)} links resolve, {len(self.videos)} videos load"
            if self.ok
            else f"{len(self.broken_links)} broken links, {len(self.bad_videos)} videos fail"
        )
        return f"diary browser check ({self.browser}, {self.seconds:.1f} s): {text}"

    def problems(self) -> list[str]:
        return [f"broken link {b['url']}: {b['reason']}" for b in self.broken_links] + [
            f"video {v['url']}: {v.get('error', 'no duration')}" for v in self.bad_videos
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _driver(window_height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise RuntimeError(f"no Chromium and chromedriver on PATH ({INSTALL_HINT})")
    browser, driver = found
    profile = tempfile.mkdtemp(prefix="wav2kp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WINDOW_WIDTH},{window_height}")
    # Selenium Manager must not try to download a driver: ours is given.
    service = Service(executable_path=driver, log_output=os.devnull)
    try:
        session = webdriver.Chrome(service=service, options=options)
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    session._wav2kp_profile = profile  # removed on quit
    return session


@contextlib.contextmanager
def chromium(window_height: int = 1000) -> Iterator[Any]:
    """A headless Chromium WebDriver session with a fresh profile, closed afterwards."""
    session = _driver(window_height)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(session._wav2kp_profile, ignore_errors=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # no access log on the console
        pass


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on localhost (a free port) for the duration; yields the
    base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _file_exists(url: str) -> str | None:
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    return None if path.exists() else f"no such file {path}"


def _http_status(url: str, timeout: float = 10.0) -> str | None:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError) as err:
        return f"unreachable: {getattr(err, 'reason', err)}"
    return None if status < 400 else f"HTTP {status}"


def _page_url(page: str | Path) -> str:
    text = str(page)
    if text.startswith(("http://", "https://", "file://")):
        return text
    return Path(page).resolve().as_uri()


def check_page(
    page: str | Path,
    screenshot: Path | None = None,
    check_external: bool = False,
    video_timeout_s: float = 30.0,
) -> BrowserCheck:
    """Load ``page`` (a path or URL) in headless Chromium and check its links, images and
    videos; save a full-page screenshot to ``screenshot`` if given."""
    start = time.perf_counter()
    url = _page_url(page)
    page_parts = urllib.parse.urlsplit(url)
    result = BrowserCheck(page=url)
    with chromium() as browser:
        result.browser = f"{browser.capabilities.get('browserName', 'chromium')} " + str(
            browser.capabilities.get("browserVersion", "")
        )
        browser.set_script_timeout(video_timeout_s + 5)
        browser.get(url)
        found = browser.execute_script(_COLLECT_JS)
        seen: set[str] = set()
        for kind, target, _ in found:
            target_parts = urllib.parse.urlsplit(target)
            if target_parts.scheme in ("data", "javascript", "mailto", "blob"):
                continue
            if target_parts._replace(fragment="") == page_parts._replace(fragment=""):
                continue  # an anchor on this page
            target = target_parts._replace(fragment="").geturl()
            if target in seen:
                continue
            seen.add(target)
            if target_parts.scheme == "file":
                reason = _file_exists(target)
            elif target_parts.netloc == page_parts.netloc or check_external:
                reason = _http_status(target)
            else:
                result.external_links.append(target)
                continue
            if reason:
                result.broken_links.append({"url": target, "kind": kind, "reason": reason})
                continue
            result.links.append(target)
            if Path(target_parts.path).suffix.lower() in VIDEO_SUFFIXES:
                meta = browser.execute_async_script(
                    _VIDEO_METADATA_JS, target, int(video_timeout_s * 1000)
                )
                meta = {"url": target, **(meta or {"error": "no answer"})}
                duration = meta.get("duration")
                if isinstance(duration, (int, float)) and duration > 0 and meta.get("width"):
                    result.videos.append(meta)
                else:
                    result.bad_videos.append(meta)
        for image in browser.execute_script(_BROKEN_IMAGES_JS):
            if image not in {b["url"] for b in result.broken_links}:
                result.broken_links.append(
                    {"url": image, "kind": "image", "reason": "the browser could not decode it"}
                )
        if screenshot is not None:
            height = browser.execute_script(
                "return Math.ceil(document.documentElement.scrollHeight)"
            )
            browser.set_window_size(WINDOW_WIDTH, min(int(height) + 40, MAX_SCREENSHOT_HEIGHT))
            with atomic_path(screenshot) as tmp:
                if not browser.save_screenshot(str(tmp)):
                    raise RuntimeError(f"{screenshot}: Chromium could not take the screenshot")
            result.screenshot = Path(screenshot).name
    result.seconds = round(time.perf_counter() - start, 2)
    return result
