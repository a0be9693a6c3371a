"""Phone times of a scored clip, for the bilabial-closure metric (``wav2kp.metrics``).

A clip whose corpus manifest has a ``text`` column (GRID's) carries its transcript in
``clip.extra["text"]``; ``clip_phones`` force-aligns it to the clip's 16 kHz audio with
``wav2kp.features.phonetic.aligned_phones``. The audio is ``clip.extra["alignment_audio"]``
where set (a clip heard through a recording condition is aligned on its clean
recording: the phones are where they were said), else ``clip.audio_path``.

GRID's pause tokens (``sp``, ``sil``) are left out of the transcript. A clip without
text, without audio, or whose alignment fails (a word CMUdict lacks, e.g. the Portuguese
demo corpus; pocketsphinx's phone pass fails on about 1 GRID clip in 10) gets ``None``,
and its closure scores are NaN, never a guess.

Alignments are kept in memory and on disk beside the corpus's audio
(``interim/<corpus>/alignments/<clip>.json``, keyed by the transcript, the audio's
content and ``ALIGN_VERSION``), so a corpus is aligned once whatever scores it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from wav2kp.atomic import write_text
from wav2kp.features.phonetic import PAUSE_TOKENS, PhoneSegment, aligned_phones
from wav2kp.media.audio import SAMPLE_RATE, load_audio

log = logging.getLogger(__name__)

ALIGN_VERSION = "align-v2"  # bump when aligned_phones' settings change
ALIGNMENT_FOLDER = "alignments"  # beside a corpus's audio/ folder

_MEMORY: dict[tuple[str, str], list[PhoneSegment] | None] = {}


def clip_text(clip) -> str:
    """The clip's transcript (``extra["text"]``), pause tokens left out; "" if none."""
    extra = clip.extra if isinstance(getattr(clip, "extra", None), dict) else {}
    words = str(extra.get("text") or "").split()
    return " ".join(w for w in words if w.lower() not in PAUSE_TOKENS)


def clip_audio(clip) -> Path | None:
    extra = clip.extra if isinstance(getattr(clip, "extra", None), dict) else {}
    path = extra.get("alignment_audio") or getattr(clip, "audio_path", None)
    return Path(path) if path else None


def alignment_cache_path(audio: Path, clip_id: str) -> Path:
    """``interim/<corpus>/alignments/<clip>.json`` for a corpus clip's ``audio/<clip>.wav``."""
    return audio.parent.parent / ALIGNMENT_FOLDER / f"{clip_id}.json"


def _key(text: str, audio_bytes: bytes) -> str:
    digest = hashlib.sha1(ALIGN_VERSION.encode())
    digest.update(text.encode())
    digest.update(audio_bytes)
    return digest.hexdigest()


def clip_phones(clip) -> list[PhoneSegment] | None:
    """The clip's phone segments from forced alignment of its transcript, or None when it
    has no text or audio or the alignment fails (logged once per clip)."""
    text, audio = clip_text(clip), clip_audio(clip)
    if not text or audio is None:
        return None
    memory_key = (str(audio), text)
    if memory_key in _MEMORY:
        return _MEMORY[memory_key]
    _MEMORY[memory_key] = segments = _aligned(clip.clip_id, audio, text)
    return segments


def _aligned(clip_id: str, audio: Path, text: str) -> list[PhoneSegment] | None:
    try:
        key = _key(text, audio.read_bytes())
    except OSError as err:
        log.warning("%s: no phone times for bilabial closures: %s", clip_id, err)
        return None
    cache = alignment_cache_path(audio, audio.stem)
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return [PhoneSegment(*row) for row in saved["segments"]]
    except (OSError, ValueError, TypeError, KeyError):
        pass  # not aligned yet, or unreadable: align again
    try:
        samples, _ = load_audio(audio, sample_rate=SAMPLE_RATE)
        segments = aligned_phones(samples, text, SAMPLE_RATE, source=f"{clip_id} ({audio})")
    except (OSError, ValueError, RuntimeError) as err:
        log.warning("%s: no phone times for bilabial closures: %s", clip_id, err)
        return None
    try:
        write_text(cache, json.dumps({"key": key, "text": text,
                                      "segments": [list(s) for s in segments]}))  # fmt: skip
    except OSError:
        pass  # a read-only data folder: align again next time
    return segments
