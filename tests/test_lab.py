"""`make lab`: notebooks/*.py open as notebooks. The test starts `make lab` itself, asks
the running server (settings and contents REST API), and, when Chromium is installed,
double-clicks a script in JupyterLab's file browser as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from wav2kp.paths import project_root
from wav2kp.report import browsercheck

JUPYTEXT_VIEWER = "Jupytext Notebook"
SCRIPT = "01_extraction.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """`make lab` on a free port with a token; a fresh user settings and workspace folder,
    so only the project's configuration counts. Yields (base URL, token)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    home = tmp_path_factory.mktemp("lab")
    port, token = _free_port(), secrets.token_hex(16)
    args = f"--no-browser --port={port} --IdentityProvider.token={token} --ServerApp.port_retries=0"
    if os.geteuid() == 0:
        args += " --allow-root"
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    log = home / "lab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
            cwd=project_root(), env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make and jupyter stop together
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                _get(f"{base}api/status?token={token}")
                break
            except (urllib.error.URLError, OSError):
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-3000:]
                    raise AssertionError(f"make lab did not start:\n{tail}") from None
                time.sleep(1)
        yield base, token
    finally:
        # the server's own shutdown (it stops the kernels it started), then make exits
        with contextlib.suppress(OSError):
            request = urllib.request.Request(f"{base}api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_running_server_makes_the_notebook_the_default_viewer(lab):
    base, token = lab
    plugin = _get(f"{base}lab/api/settings/@jupyterlab/docmanager-extension:plugin?token={token}")
    defaults = plugin["schema"]["properties"]["defaultViewers"]["default"]
    effective = {**defaults, **plugin.get("settings", {}).get("defaultViewers", {})}
    assert effective["python"] == JUPYTEXT_VIEWER
    # and jupytext serves the script as a notebook
    model = _get(f"{base}api/contents/notebooks/{SCRIPT}?type=notebook&content=1&token={token}")
    assert model["type"] == "notebook" and model["content"]["nbformat"] == 4
    tags = [c["metadata"].get("tags", []) for c in model["content"]["cells"]]
    assert ["parameters"] in tags


def test_double_click_opens_a_notebook(lab):
    missing = browsercheck.missing_browser_reason()
    if missing:
        pytest.skip(f"JupyterLab in a browser: {missing}")
    from selenium.common.exceptions import (
        ElementNotInteractableException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = lab
    with browsercheck.chromium() as browser:
        browser.get(f"{base}lab?token={token}")
        wait = WebDriverWait(
            browser, 180,
            ignored_exceptions=(StaleElementReferenceException, ElementNotInteractableException),
        )  # fmt: skip

        def double_click(name: str) -> None:
            xpath = f"//li[contains(@class, 'jp-DirListing-item')][.//span[text()='{name}']]"

            def attempt(driver) -> bool:
                shown = [e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed()]
                if shown:
                    ActionChains(driver).double_click(shown[0]).perform()
                return bool(shown)

            wait.until(attempt)

        double_click("notebooks")
        double_click(SCRIPT)
        # whichever viewer opens: a notebook panel, or the text editor
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel, .jp-FileEditor"))
        assert not browser.find_elements(By.CSS_SELECTOR, ".jp-FileEditor"), "opened as text"
        (panel,) = browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel")
        assert panel.is_displayed()
        # with the script's markdown and code cells in it
        wait.until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")) > 2
        )
        assert panel.find_elements(By.CSS_SELECTOR, ".jp-MarkdownCell")
        assert panel.find_elements(By.CSS_SELECTOR, ".jp-CodeCell")
