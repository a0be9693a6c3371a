"""How sure a summary number is: bootstrap over test sentences, paired model differences,
and a target verdict that counts only what the whole interval supports.

Per-clip scores are grouped into *units* (test sentences on a corpus: every clip of a
sentence shares its text, so clips of one sentence are not independent; one clip per
unit for a set of unrelated clips). A replicate draws as many units as there are, with
replacement, and recomputes each column's mean over the clips of the drawn units (each
clip counts once, as in the point estimate; NaN scores are left out of their column).
Every column of one call shares the same draws, so differences and ratios between
columns are paired on the same sentences. Percentile intervals; the draws come from a
seeded generator, so the same scores always give the same interval.

A target is ``met`` only when the interval's far end meets it, and below
``MIN_UNITS`` units or ``MIN_FRAMES`` scored frames no verdict is given at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
# Below either size a held-out set is too small for a verdict (the interval would be the
# spread of a handful of sentences, not the model's).
MIN_UNITS = 20
MIN_FRAMES = 1000

TOO_FEW = "too few test sentences to judge"
# Below this many units no interval is printed at all: a percentile interval over two
# sentences is the spread of two numbers (0.0191 [0.0191, 0.0191]), not an uncertainty.
MIN_INTERVAL_UNITS = 5


def interval_shown(n_units: int) -> bool:
    """Whether an interval over ``n_units`` units is worth printing."""
    return n_units >= MIN_INTERVAL_UNITS


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``confidence`` bootstrap interval over ``n_units``."""

    estimate: float
    low: float
    high: float
    n_units: int
    confidence: float = CONFIDENCE

    def as_dict(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "n_units": self.n_units}  # fmt: skip


def resample_counts(n_units: int, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(n_resamples, n_units) how often each unit is drawn in each replicate (rows sum to
    ``n_units``); a pure function of its arguments."""
    if n_units < 1:
        raise ValueError("the bootstrap needs at least one unit")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_resamples)


def unit_sums(values: np.ndarray, units: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
    """Per unit, the sum of each column's finite values and their count:
    ``(sums (U, K), counts (U, K), unit labels in first-seen order)``."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    units = list(units)
    if len(units) != len(values):
        raise ValueError(f"{len(units)} unit labels for {len(values)} rows of values")
    labels = list(dict.fromkeys(units))
    index = np.array([labels.index(u) for u in units], dtype=np.int64)
    finite = np.isfinite(values)
    sums = np.zeros((len(labels), values.shape[1]))
    counts = np.zeros((len(labels), values.shape[1]))
    np.add.at(sums, index, np.where(finite, values, 0.0))
    np.add.at(counts, index, finite.astype(np.float64))
    return sums, counts, labels


def replicate_means(
    values: np.ndarray,
    units: Sequence,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """``(estimate (K,), replicates (B, K))``: each column's mean over clips, on the data
    and on every replicate of the units (NaN where a column has no finite value)."""
    sums, counts, labels = unit_sums(values, units)
    draws = resample_counts(len(labels), n_resamples, seed).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = sums.sum(axis=0) / counts.sum(axis=0)
        replicates = (draws @ sums) / (draws @ counts)
    return estimate, replicates


def percentile_interval(
    estimate: float, replicates: np.ndarray, n_units: int, confidence: float = CONFIDENCE
) -> Interval:
    """The ``confidence`` percentile interval of ``replicates`` (NaN replicates ignored)."""
    replicates = np.asarray(replicates, dtype=np.float64)
    finite = replicates[np.isfinite(replicates)]
    if not np.isfinite(estimate) or len(finite) == 0:
        return Interval(float(estimate), float("nan"), float("nan"), n_units, confidence)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), n_units, confidence)


def mean_interval(values, units, n_resamples=N_RESAMPLES, seed=SEED, confidence=CONFIDENCE):
    """Interval of the mean over clips of ``values`` (N,), resampling ``units``."""
    estimate, replicates = replicate_means(values, units, n_resamples, seed)
    return percentile_interval(estimate[0], replicates[:, 0], len(set(units)), confidence)


def difference_interval(a, b, units, n_resamples=N_RESAMPLES, seed=SEED, confidence=CONFIDENCE):
    """Interval of mean(a - b) over the clips where both are finite: a paired difference
    of two models scored on the same clips."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return mean_interval(a - b, units, n_resamples, seed, confidence)


def ratio_interval(a, b, units, n_resamples=N_RESAMPLES, seed=SEED, confidence=CONFIDENCE):
    """Interval of mean(a) / mean(b), both means over the clips where both are finite and
    taken on the same draws (paired)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    pair = np.column_stack([np.where(both, a, np.nan), np.where(both, b, np.nan)])
    estimate, replicates = replicate_means(pair, units, n_resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio, ratios = estimate[0] / estimate[1], replicates[:, 0] / replicates[:, 1]
    return percentile_interval(ratio, ratios, len(set(units)), confidence)


# ---------- targets ----------


@dataclass(frozen=True)
class Target:
    """``low <= value <= high`` (either end may be None = unbounded)."""

    name: str
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} to {self.high:g}"
        return f">= {self.low:g}" if self.low is not None else f"<= {self.high:g}"

    def contains(self, value: float) -> bool:
        if not np.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def enough_data(n_units: int, n_frames: int) -> bool:
    return n_units >= MIN_UNITS and n_frames >= MIN_FRAMES


def verdict(target: Target, interval: Interval, n_frames: int, units: str = "") -> str:
    """``met`` when both ends of the interval meet the target, ``not met`` when neither
    does, ``not shown`` when it straddles the threshold (counts as not met), ``not
    measurable`` when undefined, and ``too few test sentences to judge`` (``units``
    names other units, e.g. "videos") below MIN_UNITS units or MIN_FRAMES frames."""
    if not enough_data(interval.n_units, n_frames):
        return f"too few {units} to judge" if units else TOO_FEW
    ends = (interval.low, interval.high)
    if not all(np.isfinite(e) for e in ends):
        return "not measurable"
    inside = [target.contains(e) for e in ends]
    if all(inside):
        return "met"
    # for a two-sided target the interval may also overhang both ends at once
    if not any(inside) and not target.contains(interval.estimate):
        return "not met"
    return "not shown"
