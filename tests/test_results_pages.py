"""Every committed result page under docs/results/ is what its command prints for the
committed table under results/ (no hand-edited figure; `make results-docs` rewrites them).
A page and its table come together: a study not yet run has neither."""

from __future__ import annotations

from pathlib import Path

import pytest
from wav2kp.studies import pages

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", sorted(pages.PAGES))
def test_result_page_equals_its_command_output(page, monkeypatch):
    monkeypatch.chdir(ROOT)  # the pages name their tables relative to the repository
    command, table = pages.PAGES[page]
    if not (ROOT / table).is_file():
        assert not (ROOT / page).exists(), f"{page} is committed without its table {table}"
        pytest.skip(f"{table} not yet run: no page to check")
    assert (ROOT / page).read_text() == pages.page_text(page), (
        f"{page} differs from `python -m wav2kp.studies {command}`: run `make results-docs`"
    )


def test_every_page_under_docs_results_is_generated():
    found = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "results").glob("*.md")}
    committed = {page for page, (_, table) in pages.PAGES.items() if (ROOT / table).is_file()}
    assert found == committed
    # the pages of the studies behind the README and the final model are always committed
    assert {"docs/results/grid-final.md", "docs/results/grid-levers-cv.md"} <= committed
