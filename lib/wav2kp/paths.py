"""Where things live on disk: one place that every notebook, command and test asks.

Layout (see data/README.md):
    data/raw/<corpus>/                videos (+ manifest.csv for the demo corpus)
    data/interim/<corpus>/extracted/  one .npz per clip + manifest.csv (notebook 01)
    data/interim/<corpus>/audio/      PCM wav per clip (16 kHz mono + original rate)
    data/interim/<corpus>/frames/     optional frame images (keep_frames=True)
    data/processed/<corpus>/          features/, split.csv, normalisation stats (02, 03)
    data/models/<corpus>/<model>/     checkpoints (04)
    reports/runs/<timestamp>-<name>/  executed notebooks, HTML, metrics, figures, videos
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


def project_root() -> Path:
    """The checkout root: $WAV2KP_ROOT, else the nearest parent holding wav2kp's pyproject."""
    env = os.environ.get("WAV2KP_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            marker = folder / "pyproject.toml"
            if marker.is_file() and 'name = "wav2kp"' in marker.read_text(errors="ignore"):
                return folder
    return Path.cwd().resolve()


def data_root() -> Path:
    """$WAV2KP_DATA, else <project>/data."""
    env = os.environ.get("WAV2KP_DATA")
    return Path(env).resolve() if env else project_root() / "data"


def reports_root() -> Path:
    return project_root() / "reports"


def shared_realclips() -> Path:
    """The optional real-clip folder beside the checkout (absent for most users)."""
    return project_root().parent / "shared" / "realclips"


def check_corpus_name(name: object) -> str:
    """A corpus name names one folder under each of data/raw, interim, processed and
    models: it cannot be empty, contain a path separator, or be '.' or '..' (which would
    write outside data/). Returns it; raises ValueError saying what to use instead."""
    text = name if isinstance(name, str) else ""
    problem = None
    if not text.strip():
        problem = "is empty"
    elif "/" in text or "\\" in text or os.sep in text:
        problem = "contains a path separator"
    elif text in (".", ".."):
        problem = "is a relative folder"
    elif text != text.strip() or any(ord(c) < 32 for c in text):
        problem = "has leading/trailing spaces or control characters"
    if problem:
        raise ValueError(
            f"{name!r} is not a corpus name: it {problem}; use one folder name under data/ "
            "(letters, digits, '-', '_', '.'), e.g. 'myvideos'"
        )
    return text


@dataclass(frozen=True)
class CorpusPaths:
    """All derived locations for one named corpus (e.g. 'demo', 'demo-tiny', 'myvideos').
    The name is checked (``check_corpus_name``): no corpus writes outside data/."""

    corpus: str
    root: Path | None = None

    def __post_init__(self) -> None:
        check_corpus_name(self.corpus)

    @property
    def base(self) -> Path:
        return self.root if self.root is not None else data_root()

    @property
    def raw(self) -> Path:
        return self.base / "raw" / self.corpus

    @property
    def interim(self) -> Path:
        return self.base / "interim" / self.corpus

    @property
    def extracted(self) -> Path:
        return self.interim / "extracted"

    @property
    def audio(self) -> Path:
        return self.interim / "audio"

    @property
    def frames(self) -> Path:
        return self.interim / "frames"

    @property
    def processed(self) -> Path:
        return self.base / "processed" / self.corpus

    @property
    def features(self) -> Path:
        return self.processed / "features"

    @property
    def split_file(self) -> Path:
        return self.processed / "split.csv"

    @property
    def models(self) -> Path:
        return self.base / "models" / self.corpus


def resolve_output_dir(output_dir: str | os.PathLike) -> Path:
    """A notebook's ``output_dir`` parameter: relative paths are taken from the project
    root (papermill may run a notebook from any working directory); created if missing."""
    path = Path(output_dir)
    if not path.is_absolute():
        path = project_root() / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def git_commit(root: Path) -> str:
    """The checkout's short commit, ``+dirty`` when tracked files changed (``unknown``
    outside git): what a run or a study records it was made with."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")
