"""Many voices for one real mouth: espeak-ng voices reading a real corpus's sentences,
with the real speaker's mouth motion time-warped onto them (issue 10).

A model trained on one real speaker learns that voice. ``build_voices`` makes, for each
training sentence of a corpus with word alignments (GRID's ``align/``), ``copies``
synthetic utterances of the same text, each by a different espeak-ng voice (English
accents x voice variants, drawn pitch, pitch range and speed). espeak-ng reports when
each word (and phone) starts, GRID's alignment when each word was really said, so a
piecewise-linear map of time between the two (word boundaries as anchors, i.e. the
phones within a word spread by espeak's own relative durations) carries the real
keypoint track onto the synthetic speech: the synthetic clip's frame at time t shows the
real face at the real time where the same word (and the same fraction of it) was said.
Leading and trailing silences keep the real clip's lengths; a low noise floor at a drawn
level stands in for a room (digital silence would be a level no microphone gives).

Written as ``data/interim/<corpus>-voices/``: ``audio/<id>.wav`` (16 kHz),
``extracted/<id>.npz`` (``times``, ``lm68``, ``frame_status``, ``width``, ``height``,
``phone_starts``, ``phone_names``: espeak's phones in the clip's time), and
``manifest.csv`` (``clip_id, source_clip, sentence_id, voice, rate, pitch, pitch_range,
noise_db, text, status, error``). The real clips' phone timing (espeak's phones of the
text warped onto the real word alignment) goes to ``source_phones/<source clip>.npz``.
A re-run skips finished clips; a sentence espeak words differently from the alignment is
listed with its reason and left out.

``TrainConfig(voices={"copies": N})`` adds, for every training clip, N of its synthetic
voices (``voice_clips``), with the training clip's speaker (the same face) and the
fold's feature statistics and target normaliser; held-out sentences never contribute.
"""

from __future__ import annotations

import argparse
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wav2kp.atomic import write_csv, write_npz
from wav2kp.media.audio import SAMPLE_RATE
from wav2kp.paths import CorpusPaths

VOICES_VERSION = 1  # bump when what a seed produces changes
# espeak-ng's English accents and voice variants (the demo corpus speaks pt-BR with
# variants f2 / f3; those two are kept out, so the demo voices stay unheard)
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc", "en-029",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd")  # fmt: skip
VARIANTS = ("", "f1", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "klatt",
            "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie", "adam", "anika", "aunty",
            "benjamin", "caleb", "david", "ed", "edward", "grandma", "grandpa", "ian",
            "john", "linda", "max", "michel", "norbert", "steph", "travis", "victor",
            "zac")  # fmt: skip
PAUSE_PHONES = ("_", "_:", "_!", "_|", "||", "|")
SILENCE_WORDS = frozenset({"sil", "sp", "spn", ""})


def voices_corpus(corpus: str) -> str:
    return f"{corpus}-voices"


@dataclass(frozen=True)
class VoiceDraw:
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    noise_db: float  # noise floor below the speech's RMS

    @classmethod
    def draw(cls, rng: np.random.Generator) -> VoiceDraw:
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
        return cls(
            voice=f"{accent}+{variant}" if variant else accent,
            rate=int(rng.integers(125, 211)),
            pitch=int(rng.integers(20, 81)),
            pitch_range=int(rng.integers(20, 91)),
            noise_db=float(rng.uniform(35.0, 60.0)),
        )


def _seed(*parts) -> int:
    digest = hashlib.sha1(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def spoken_words(words: Sequence[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    return [w for w in words if w[2].lower() not in SILENCE_WORDS]


def synthetic_words(speech) -> list[tuple[float, float]]:
    """(start, end) seconds of each word espeak spoke: a word starts at its first phone
    at or after its word event and ends where the next word starts (the last one at the
    first pause after it)."""
    phones = speech.phonemes
    starts = []
    for event_time, _, _ in speech.words:
        later = [t for t, name in phones if t >= event_time - 1e-9 and name not in PAUSE_PHONES]
        starts.append(later[0] if later else event_time)
    ends = starts[1:]
    last = starts[-1] if starts else 0.0
    pauses = [t for t, name in phones if t > last and name in PAUSE_PHONES]
    ends.append(pauses[0] if pauses else speech.duration)
    return list(zip(starts, ends, strict=True))


def time_map(
    real_words: Sequence[tuple[float, float, str]],
    synth_words: Sequence[tuple[float, float]],
    lead: float,
    real_end: float,
    synth_end: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Anchor times (synthetic clip time, real clip time), increasing: the clip starts,
    every word's start and end, the clip ends. The synthetic clip time is espeak's time
    plus ``lead``."""
    synth, real = [0.0], [0.0]
    for (real_start, real_stop, _), (syn_start, syn_stop) in zip(
        real_words, synth_words, strict=True
    ):
        for s, r in ((lead + syn_start, real_start), (lead + syn_stop, real_stop)):
            if s > synth[-1] + 1e-6 and r > real[-1] + 1e-6:
                synth.append(s)
                real.append(r)
    synth.append(max(synth_end, synth[-1] + 1e-3))
    real.append(max(real_end, real[-1] + 1e-3))
    return np.asarray(synth), np.asarray(real)


def warp_track(
    times: np.ndarray, lm68: np.ndarray, valid: np.ndarray, real_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (N, 68, 2) at real times ``real_at``, linear between the two real
    frames around each; a frame is valid when both are."""
    times = np.asarray(times, np.float64)
    index = np.clip(np.searchsorted(times, real_at, side="right") - 1, 0, len(times) - 1)
    after = np.clip(index + 1, 0, len(times) - 1)
    span = np.where(after > index, times[after] - times[index], 1.0)
    weight = np.clip((real_at - times[index]) / span, 0.0, 1.0)[:, None, None]
    out = (1 - weight) * lm68[index] + weight * lm68[after]
    ok = valid[index] & valid[after] & np.isfinite(out).all(axis=(1, 2))
    return np.where(ok[:, None, None], out, np.nan).astype(np.float32), ok


def phones_in(times_map, phones, lead: float, to_real: bool) -> tuple[np.ndarray, np.ndarray]:
    """espeak's (start, name) phones as (starts, names) in the synthetic clip's time, or
    carried through the time map into the real clip's time."""
    starts = np.array([lead + t for t, _ in phones], np.float64)
    names = np.array([name for _, name in phones], dtype=str)
    if to_real:
        synth, real = times_map
        starts = np.interp(starts, synth, real)
    return starts, names


def make_voice_clip(source: dict, draw: VoiceDraw, rng: np.random.Generator) -> dict:
    """One synthetic clip (module doc) from a real clip's ``source`` (``times``, ``lm68``,
    ``valid``, ``width``, ``height``, ``text``, ``words``: GRID alignment rows)."""
    from scipy.signal import resample_poly

    from wav2kp.demo.tts import Prosody, synthesize

    real_words = spoken_words(source["words"])
    speech = synthesize(
        source["text"], Prosody(rate=draw.rate, pitch=draw.pitch, pitch_range=draw.pitch_range),
        voice=draw.voice, seed=int(rng.integers(2**31)),
    )  # fmt: skip
    synth_words = synthetic_words(speech)
    if len(synth_words) != len(real_words):
        raise ValueError(
            f"espeak spoke {len(synth_words)} words, the alignment has {len(real_words)}"
        )
    real_end = float(source["times"][-1]) + float(np.median(np.diff(source["times"])))
    lead = real_words[0][0]
    speech_end = synth_words[-1][1]
    tail = max(real_end - real_words[-1][1], 0.1)
    total = lead + speech_end + tail
    anchors = time_map(real_words, synth_words, lead, real_end, total)
    period = float(np.median(np.diff(source["times"])))
    times = np.arange(int(np.floor(total / period)), dtype=np.float64) * period
    real_at = np.interp(times, *anchors)
    lm68, ok = warp_track(source["times"], source["lm68"], source["valid"], real_at)
    audio = np.zeros(int(round(total * SAMPLE_RATE)), np.float64)
    voice = resample_poly(speech.audio[: int(speech_end * speech.sample_rate)].astype(np.float64),
                          SAMPLE_RATE, speech.sample_rate)  # fmt: skip
    start = int(round(lead * SAMPLE_RATE))
    voice = voice[: len(audio) - start]
    audio[start : start + len(voice)] = voice
    rms = float(np.sqrt(np.mean(voice**2))) if len(voice) else 1e-3
    audio += rng.standard_normal(len(audio)) * rms * 10 ** (-draw.noise_db / 20)
    audio *= 0.5 / max(float(np.abs(audio).max()), 1e-9)
    synth_phones = phones_in(anchors, speech.phonemes, lead, to_real=False)
    real_phones = phones_in(anchors, speech.phonemes, lead, to_real=True)
    return {
        "audio": audio.astype(np.float32),
        "times": times,
        "lm68": lm68,
        "frame_status": np.where(ok, 0, 2).astype(np.int8),
        "phones": synth_phones,
        "real_phones": real_phones,
    }


def _source(paths: CorpusPaths, clip_id: str, text: str, align: Path) -> dict:
    from wav2kp.extraction.reader import read_extraction
    from wav2kp.training.vad import read_grid_align

    extraction = read_extraction(paths.extracted / f"{clip_id}.npz")
    return {
        "times": extraction.times,
        "lm68": extraction.lm68,
        "valid": extraction.valid,
        "width": extraction.width,
        "height": extraction.height,
        "text": text,
        "words": read_grid_align(align),
    }


def build_voices(
    corpus: str,
    align_dir: str | Path,
    copies: int = 4,
    seed: int = 0,
    splits: Sequence[str] = ("train", "val"),
    root=None,
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``copies`` synthetic voices of every clip of ``splits`` (module doc);
    returns the manifest."""
    from tqdm.auto import tqdm

    from wav2kp.features.splits import ensure_split, ok_clips
    from wav2kp.media.audio import write_wav

    paths = CorpusPaths(corpus, root)
    out = CorpusPaths(voices_corpus(corpus), root)
    split = ensure_split(corpus, root=root)
    chosen = set(split.loc[split["split"].isin(list(splits)), "clip_id"].astype(str))
    manifest = ok_clips(corpus, root)
    manifest = manifest[manifest["clip_id"].astype(str).isin(chosen)]
    manifest_file = out.extracted / "manifest.csv"
    previous = {}
    if manifest_file.is_file():
        old = pd.read_csv(manifest_file, dtype=str, keep_default_na=False)
        previous = {r["clip_id"]: r for r in old.to_dict("records")}
    rows = []
    for record in tqdm(manifest.to_dict("records"), desc=f"voices {corpus}", unit="clip",
                       disable=not progress):  # fmt: skip
        cid, sentence = str(record["clip_id"]), str(record.get("sentence_id") or record["clip_id"])
        align = Path(align_dir) / f"{sentence}.align"
        source = None
        for copy in range(copies):
            vid = f"{cid}~v{copy}"
            rng = np.random.default_rng(_seed(VOICES_VERSION, seed, cid, copy))
            draw = VoiceDraw.draw(rng)
            row = {"clip_id": vid, "source_clip": cid, "sentence_id": sentence,
                   "speaker": str(record.get("speaker") or ""), "emotion": str(record.get("emotion") or ""),
                   "voice": draw.voice, "rate": draw.rate, "pitch": draw.pitch,
                   "pitch_range": draw.pitch_range, "noise_db": round(draw.noise_db, 2),
                   "text": str(record.get("text") or ""), "seed": seed,
                   "version": VOICES_VERSION, "status": "ok", "error": ""}  # fmt: skip
            old = previous.get(vid)
            done = (old is not None and old.get("status") == "ok" and old.get("voice") == draw.voice
                    and str(old.get("seed")) == str(seed)
                    and str(old.get("version")) == str(VOICES_VERSION)
                    and (out.extracted / f"{vid}.npz").is_file()
                    and (out.audio / f"{vid}.wav").is_file())  # fmt: skip
            if done:
                rows.append(row)
                continue
            try:
                if not align.is_file():
                    raise FileNotFoundError(f"{align}: no word alignment")
                if not row["text"]:
                    raise ValueError("no text in the manifest")
                source = source or _source(paths, cid, row["text"], align)
                clip = make_voice_clip(source, draw, rng)
                write_wav(out.audio / f"{vid}.wav", clip["audio"], SAMPLE_RATE)
                write_npz(out.extracted / f"{vid}.npz", times=clip["times"], lm68=clip["lm68"],
                          frame_status=clip["frame_status"], width=np.array(source["width"]),
                          height=np.array(source["height"]), phone_starts=clip["phones"][0],
                          phone_names=clip["phones"][1])  # fmt: skip
                if copy == 0:
                    write_npz(out.interim / "source_phones" / f"{cid}.npz",
                              phone_starts=clip["real_phones"][0],
                              phone_names=clip["real_phones"][1])  # fmt: skip
            except Exception as exc:  # one sentence must not stop the batch
                row.update(status="error", error=f"{vid}: {exc}".splitlines()[0])
                warnings.warn(row["error"], stacklevel=2)
            rows.append(row)
    table = pd.DataFrame(rows)
    write_csv(manifest_file, table)
    return table


def voice_clips(train_clips: Sequence, settings: dict, context: dict, seed: int = 0) -> list:
    """``settings["copies"]`` synthetic voices of every training clip (module doc) as
    ``ClipData`` with the training clip's speaker, window, the context's feature
    statistics and normaliser; a clip without voices is warned about once."""
    from wav2kp.config import WindowConfig
    from wav2kp.extraction.reader import read_extraction
    from wav2kp.features.features import FeatureStats, compute_features
    from wav2kp.media.audio import load_audio
    from wav2kp.windowing.dataset import make_clip
    from wav2kp.windowing.targets import TargetNormalizer

    copies = int(settings.get("copies", 0))
    if copies <= 0:
        return []
    name = settings.get("corpus") or voices_corpus(str(context.get("corpus") or ""))
    paths = CorpusPaths(name, Path(settings["root"]) if settings.get("root") else None)
    manifest_file = paths.extracted / "manifest.csv"
    if not manifest_file.is_file():
        raise FileNotFoundError(
            f"{manifest_file}: no synthetic voices; make them with `wav2kp voices --corpus "
            f"{str(name).removesuffix('-voices')} --align-dir ...`"
        )
    table = pd.read_csv(manifest_file, dtype=str, keep_default_na=False)
    table = table[table["status"] == "ok"]
    by_source = {k: list(g["clip_id"]) for k, g in table.groupby("source_clip")}
    stats = context["feature_stats"]
    stats = FeatureStats.from_dict(stats) if isinstance(stats, dict) else stats
    normalizer = context["normalizer"]
    if isinstance(normalizer, dict):
        normalizer = TargetNormalizer.from_state_dict(normalizer)
    out, missing = [], []
    for clip in train_clips:
        if clip.extra.get("augmented_from"):
            continue
        available = by_source.get(clip.clip_id, [])
        if not available:
            missing.append(clip.clip_id)
            continue
        order = np.random.default_rng(_seed("pick", seed, clip.clip_id)).permutation(len(available))
        for index in order[:copies]:
            vid = available[int(index)]
            extraction = read_extraction(paths.extracted / f"{vid}.npz")
            samples, _ = load_audio(paths.audio / f"{vid}.wav", sample_rate=SAMPLE_RATE)
            raw, feature_times = compute_features(samples, SAMPLE_RATE, stats.feature_config)
            window = WindowConfig.from_dict(
                clip.extra.get("window_config", WindowConfig().to_dict())
            )
            out.append(make_clip(
                vid, extraction.times, extraction.lm68, extraction.valid, raw, feature_times,
                stats, window, normalizer, speaker=clip.speaker, emotion=clip.emotion,
                sentence_id=clip.sentence_id, split=clip.split,
                frame_size=(extraction.width, extraction.height), audio_path=paths.audio / f"{vid}.wav",
                extra={"voice_of": clip.clip_id},
            ))  # fmt: skip
    if missing:
        warnings.warn(f"{len(missing)} training clip(s) have no synthetic voice in {name} "
                      f"(e.g. {missing[0]})", stacklevel=2)  # fmt: skip
    return out


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="the real corpus (extracted, split)")
    parser.add_argument("--align-dir", required=True, help="its word alignments (GRID align/)")
    parser.add_argument("--copies", type=int, default=4, help="voices per sentence (default 4)")
    parser.add_argument("--seed", type=int, default=0)


def run_cli(args: argparse.Namespace) -> int:
    table = build_voices(args.corpus, args.align_dir, args.copies, args.seed)
    print(f"{(table['status'] == 'ok').sum()} synthetic clips ok, "
          f"{(table['status'] != 'ok').sum()} failed -> data/interim/{voices_corpus(args.corpus)}")  # fmt: skip
    return 0
