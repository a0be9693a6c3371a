"""A speaker-independent phonetic stream: phones from pocketsphinx, as per-frame inputs.

Log-mel describes one speaker's spectrum; a phone recogniser trained on many speakers
says *what* is said, whoever says it. ``pocketsphinx`` (official bindings; its wheel holds
a US-English acoustic model, a phone language model and CMUdict, so nothing is
downloaded) gives:

- ``allphone_segments``: free phone decoding (allphone mode), no transcript needed: what
  a model may see at test time. About 10x real time on one core.
- ``aligned_phones``: forced alignment of a known transcript (GRID's manifest text): phone
  times for training-time analysis and for the bilabial-closure metric
  (``wav2kp.metrics``).

``phonetic_frames`` turns segments into per-feature-frame inputs: a one-hot viseme class
(phones that look alike on the lips share one, ``VISEME_OF``) and the position within the
phone (0 at its start, 1 at its end), appended to log-mel by
``wav2kp.features.features.compute_features`` when ``FeatureConfig.phones`` is
``"allphone"``. The phones are US-English; other languages map approximately (the demo
corpus is Brazilian Portuguese: notebook 04 and the lever study measure what the stream
does there).

Decoding is deterministic; segments are cached on disk by the audio's content
(``PHONE_CACHE``) so a corpus is decoded once whatever trains on it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from wav2kp.atomic import write_text
from wav2kp.config import PHONETIC_DIM, SAMPLE_RATE
from wav2kp.metrics import BILABIAL_PHONES

SPHINX_FRAME_S = 0.01  # pocketsphinx counts time in 10 ms frames

# ARPAbet phones (pocketsphinx en-us) grouped by what the lips and jaw do. Silence and
# fillers (``+NSN+``, ``+SPN+``, ...) are ``silence``.
VISEME_GROUPS: dict[str, tuple[str, ...]] = {
    "silence": ("SIL",),
    "bilabial": BILABIAL_PHONES,  # lips closed (wav2kp.metrics scores the closures)
    "labiodental": ("F", "V"),  # lower lip to teeth
    "dental": ("TH", "DH"),
    "alveolar": ("T", "D", "N", "L"),
    "sibilant": ("S", "Z"),
    "postalveolar": ("SH", "ZH", "CH", "JH"),  # lips forward
    "velar": ("K", "G", "NG", "HH"),
    "glide": ("W", "R"),  # rounded
    "open": ("AA", "AE", "AH", "AY", "AW"),
    "mid": ("EH", "ER", "EY"),
    "close": ("IY", "IH", "Y"),  # spread
    "rounded": ("UW", "UH", "OW", "OY", "AO"),
}
VISEMES: tuple[str, ...] = tuple(VISEME_GROUPS)
VISEME_OF: dict[str, str] = {p: v for v, phones in VISEME_GROUPS.items() for p in phones}
# per frame: one value per viseme, then the position within the phone (config.PHONETIC_DIM,
# which FeatureConfig.dim counts without importing this module)
assert PHONETIC_DIM == len(VISEMES) + 1, "config.PHONETIC_DIM is out of date"


class PhoneSegment(NamedTuple):
    phone: str  # ARPAbet, "SIL" for silence and fillers
    start: float  # seconds
    end: float  # seconds (exclusive)
    word: str = ""  # the transcript word it belongs to (forced alignment only)


def viseme_of(phone: str) -> str:
    """The viseme class of an ARPAbet phone (stress digits ignored); fillers and unknown
    symbols are silence."""
    return VISEME_OF.get(phone.rstrip("012").upper(), "silence")


# ---------- decoding ----------


def _model_files() -> dict[str, str]:
    from pocketsphinx import get_model_path

    base = Path(get_model_path()) / "en-us"
    files = {
        "hmm": base / "en-us",
        "phone_lm": base / "en-us-phone.lm.bin",
        "dict": base / "cmudict-en-us.dict",
    }
    for path in files.values():
        if not path.exists():
            raise FileNotFoundError(f"pocketsphinx model file missing: {path}")
    return {k: str(v) for k, v in files.items()}


def _new_decoder(kind: str):
    """A fresh pocketsphinx decoder (0.2 s; the aligner's dictionary 0.7 s). Never reused
    across utterances: a decoder's cepstral mean carries over from one utterance to the
    next, so a reused one decodes the same audio differently (and one is not thread-safe)."""
    from pocketsphinx import Decoder

    files = _model_files()
    if kind == "allphone":
        # the settings dependencies.md records for phone decoding
        return Decoder(hmm=files["hmm"], allphone=files["phone_lm"], lw=2.0,
                       beam=1e-20, pbeam=1e-20, loglevel="FATAL")  # fmt: skip
    return Decoder(hmm=files["hmm"], dict=files["dict"], loglevel="FATAL")


def _pcm16(samples: np.ndarray) -> bytes:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or len(samples) == 0:
        raise ValueError(f"need a non-empty mono signal, got shape {samples.shape}")
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _decode(decoder, raw: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(raw, full_utt=True)
    decoder.end_utt()


def allphone_segments(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[PhoneSegment]:
    """Phones recognised in a mono signal with no transcript, covering it end to end
    (a fresh decoder each time: ``_new_decoder`` says why)."""
    _check_rate(sample_rate)
    decoder = _new_decoder("allphone")
    _decode(decoder, _pcm16(samples))
    segments = [
        PhoneSegment(
            _phone_name(s.word), s.start_frame * SPHINX_FRAME_S, (s.end_frame + 1) * SPHINX_FRAME_S
        )  # fmt: skip
        for s in decoder.seg()
    ]
    return _merge_silences(segments)


# transcript tokens that are pauses, not words (GRID's manifest writes "sp")
PAUSE_TOKENS = frozenset({"sp", "sil", "<sil>", "spn"})
# seconds of digital silence padded around the audio on a retry: alignment sometimes finds
# no path when the last word runs into the clip's end
ALIGN_PADS = (0.0, 0.3, 0.6)


def aligned_phones(
    samples: np.ndarray, text: str, sample_rate: int = SAMPLE_RATE, source: str = "audio"
) -> list[PhoneSegment]:
    """Phones of a known transcript, placed in time by forced alignment. A word the
    dictionary does not know, or a transcript no alignment fits, is a ``ValueError``
    naming ``source``."""
    _check_rate(sample_rate)
    words = [w for w in text.lower().split() if w and w not in PAUSE_TOKENS]
    if not words:
        raise ValueError(f"{source}: empty transcript")
    decoder = _new_decoder("align")
    unknown = [w for w in words if decoder.lookup_word(w) is None]
    if unknown:
        raise ValueError(f"{source}: words not in CMUdict: {', '.join(sorted(set(unknown)))}")
    samples = np.asarray(samples, dtype=np.float32)
    for pad in ALIGN_PADS:
        silence = np.zeros(int(round(pad * SAMPLE_RATE)), np.float32)
        raw = _pcm16(np.concatenate([silence, samples, silence]))
        if pad:  # a failed search leaves the decoder's state behind
            decoder = _new_decoder("align")
        try:
            decoder.set_align_text(" ".join(words))
            _decode(decoder, raw)
            decoder.set_alignment()
            _decode(decoder, raw)
            # read while iterating: pocketsphinx reuses the iterator's word object
            return _aligned_segments(decoder.get_alignment(), pad, len(samples) / SAMPLE_RATE)
        except RuntimeError:
            continue
    raise ValueError(f"{source}: forced alignment of {text!r} found no path through the audio")


def _aligned_segments(alignment, pad: float, duration: float) -> list[PhoneSegment]:
    segments = []
    for word in alignment:
        label = "" if word.name.startswith("<") else word.name.split("(")[0]
        for phone in word:
            start = min(max(phone.start * SPHINX_FRAME_S - pad, 0.0), duration)
            end = min(max((phone.start + phone.duration) * SPHINX_FRAME_S - pad, 0.0), duration)
            if end > start:
                segments.append(PhoneSegment(_phone_name(phone.name), start, end, label))
    return segments


def _check_rate(sample_rate: int) -> None:
    if int(sample_rate) != SAMPLE_RATE:
        raise ValueError(f"pocketsphinx's model takes {SAMPLE_RATE} Hz audio, got {sample_rate}")


def _phone_name(name: str) -> str:
    name = name.upper()
    return "SIL" if name.startswith("+") or name in ("SIL", "<SIL>", "") else name


def _merge_silences(segments: list[PhoneSegment]) -> list[PhoneSegment]:
    out: list[PhoneSegment] = []
    for seg in segments:
        if out and seg.phone == "SIL" and out[-1].phone == "SIL":
            out[-1] = out[-1]._replace(end=seg.end)
        else:
            out.append(seg)
    return out


# ---------- per-frame inputs ----------


def phonetic_frames(segments: Sequence[PhoneSegment], times: np.ndarray) -> np.ndarray:
    """(F, PHONETIC_DIM) float32 at ``times`` (s): a one-hot viseme class, then the
    position within the phone (0 at its start, 1 at its end). Times outside every
    segment are silence at position 0."""
    times = np.asarray(times, dtype=np.float64)
    out = np.zeros((len(times), PHONETIC_DIM), np.float32)
    out[:, VISEMES.index("silence")] = 1.0
    if not len(segments):
        return out
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    index = np.searchsorted(starts, times, side="right") - 1
    inside = (index >= 0) & (times < ends[np.clip(index, 0, None)])
    rows = np.flatnonzero(inside)
    seg = index[rows]
    classes = np.array([VISEMES.index(viseme_of(s.phone)) for s in segments])[seg]
    out[rows] = 0.0
    out[rows, classes] = 1.0
    length = np.maximum(ends[seg] - starts[seg], 1e-9)
    out[rows, -1] = np.clip((times[rows] - starts[seg]) / length, 0.0, 1.0)
    return out


# ---------- a cache by content ----------

DECODER_VERSION = "allphone-lw2-v2"  # bump when the decoding settings change


def phone_cache_dir(root=None) -> Path:
    """Where decoded segments are kept (``$WAV2KP_DATA``/interim/phones)."""
    from wav2kp.paths import data_root

    return (Path(root) if root is not None else data_root()) / "interim" / "phones"


def _cache_key(samples: np.ndarray) -> str:
    digest = hashlib.sha1(DECODER_VERSION.encode())
    digest.update(_pcm16(samples))
    return digest.hexdigest()


def cached_allphone_segments(samples: np.ndarray, root=None) -> list[PhoneSegment]:
    """``allphone_segments`` of 16 kHz ``samples``, read from the cache when the same
    samples were decoded before (any corpus, any run)."""
    path = phone_cache_dir(root) / f"{_cache_key(samples)}.json"
    if path.is_file():
        try:
            return [PhoneSegment(*row) for row in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            pass  # unreadable: decode again
    segments = allphone_segments(samples)
    try:
        os.makedirs(path.parent, exist_ok=True)
        write_text(path, json.dumps([list(s) for s in segments]))
    except OSError:
        pass  # a read-only data folder: decode every time
    return segments
