"""Offline Brazilian Portuguese speech with phoneme timing: espeak-ng through ctypes.

espeak-ng (shipped with its voice data by ``espeakng_loader``) runs in synchronous mode;
its callback hands us 16-bit samples and events. Phoneme events carry the phoneme
mnemonic and the audio position (ms) where the phoneme starts - the ground truth that
drives the mouth of the demo faces.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7
# espeak_PARAMETER
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Prosody:
    """espeak parameters: rate in words/min, pitch and range 0-100, volume 0-200."""

    rate: int = 165
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100


@dataclass
class Speech:
    audio: np.ndarray  # (n,) float32 in [-1, 1]
    sample_rate: int
    phonemes: list[tuple[float, str]]  # (start seconds, espeak mnemonic), non-decreasing
    words: list[tuple[float, int, int]]  # (start seconds, text position, length)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


class _Engine:
    """A freshly loaded espeak-ng. The library keeps state in static variables (pitch
    flutter phase, wave generator) that even espeak_Terminate + espeak_Initialize do not
    reset, so the same text would come out a few samples different depending on what was
    said before. Loading the library afresh for each utterance (~4 ms) makes synthesis a
    pure function of its arguments."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, data, INITIALIZE_PHONEME_EVENTS
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise (data folder {data.decode()})")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str, int, int]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def close(self) -> None:
        import _ctypes

        self.lib.espeak_Terminate()
        _ctypes.dlclose(self.lib._handle)  # unload: the next load starts from clean statics

    def _on_synth(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                name = ev.id.string.decode("ascii", errors="replace")
                self._events.append((EVENT_PHONEME, ev.audio_position, name, 0, 0))
            elif ev.type == EVENT_WORD:
                self._events.append(
                    (EVENT_WORD, ev.audio_position, "", ev.text_position, ev.length)
                )
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, prosody: Prosody, seed: int = 0) -> Speech:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice named {voice!r}")
        for param, value in (
            (PARAM_RATE, prosody.rate),
            (PARAM_PITCH, prosody.pitch),
            (PARAM_RANGE, prosody.pitch_range),
            (PARAM_VOLUME, prosody.volume),
        ):
            self.lib.espeak_SetParameter(param, int(value), 0)
        # espeak-ng draws random noise (fricatives, jitter): seed it so that the same
        # call gives the same audio whatever was synthesised before in this process
        self.lib.espeak_ng_SetRandSeed(int(seed))
        self._chunks, self._events = [], []
        raw = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(raw)
        code = self.lib.espeak_Synth(buf, len(raw), 0, 0, 0, CHARS_UTF8 | ENDPAUSE, None, None)
        if code != 0:
            raise RuntimeError(f"espeak-ng failed on {text!r} (error {code})")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        events = self._events
        phonemes = [
            (pos / 1000.0, name) for kind, pos, name, _, _ in events if kind == EVENT_PHONEME
        ]
        words = [(pos / 1000.0, tp, ln) for kind, pos, _, tp, ln in events if kind == EVENT_WORD]
        return Speech(samples.astype(np.float32) / 32768.0, self.sample_rate, phonemes, words)


_lock = threading.Lock()  # espeak-ng is not reentrant


def synthesize(
    text: str, prosody: Prosody | None = None, voice: str = "pt-br", seed: int = 0
) -> Speech:
    """Speak ``text`` with espeak-ng; audio at espeak's native rate (22050 Hz).
    The same arguments (``seed`` seeds espeak's noise) give the same samples."""
    if not text.strip():
        raise ValueError("cannot synthesize empty text")
    with _lock:
        engine = _Engine()
        try:
            return engine.synthesize(text, voice, prosody or Prosody(), seed)
        finally:
            engine.close()
