"""Credit lines of the public corpora the project runs on, for every place that shows
results on them (notebooks, diary, README)."""

from __future__ import annotations

GRID = (
    "GRID audio-visual corpus: M. Cooke, J. Barker, S. Cunningham and X. Shao, "
    '"An audio-visual corpus for speech perception and automatic speech recognition", '
    "JASA 120(5), 2006; licence CC BY 4.0"
)
# corpus name prefix -> credit (the README names the GRID run's corpus ``grid``)
CREDITS = {"grid": GRID}


def corpus_credit(corpus: str) -> str | None:
    """The credit line a corpus' results must carry, or None (own or demo data)."""
    for prefix, credit in CREDITS.items():
        if str(corpus).lower().startswith(prefix):
            return credit
    return None
