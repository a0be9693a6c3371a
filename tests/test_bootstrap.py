"""The sentence bootstrap and the target verdicts, on hand-made scores with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from wav2kp.evaluation import bootstrap
from wav2kp.evaluation.bootstrap import Interval, Target


def test_resample_counts_are_seeded_draws_of_all_units():
    counts = bootstrap.resample_counts(7, n_resamples=500, seed=3)
    assert counts.shape == (500, 7)
    assert (counts.sum(axis=1) == 7).all()
    np.testing.assert_array_equal(counts, bootstrap.resample_counts(7, 500, seed=3))
    assert not np.array_equal(counts, bootstrap.resample_counts(7, 500, seed=4))
    # every unit is drawn about equally often over many replicates
    assert counts.mean(axis=0) == pytest.approx(np.ones(7), abs=0.1)


def test_two_sentences_give_the_range_of_their_means():
    # replicates are 0 (both draws sentence a), 1 (both b) or 0.5: P = 1/4, 1/4, 1/2
    values = np.array([0.0, 0.0, 1.0, 1.0])
    interval = bootstrap.mean_interval(values, ["a", "a", "b", "b"], n_resamples=4000)
    assert interval.estimate == 0.5
    assert (interval.low, interval.high) == (0.0, 1.0)
    assert interval.n_units == 2
    _, replicates = bootstrap.replicate_means(values, ["a", "a", "b", "b"], n_resamples=4000)
    shares = [np.mean(replicates[:, 0] == v) for v in (0.0, 0.5, 1.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)


def test_each_clip_counts_once_in_the_estimate():
    # sentence a has four clips scoring 1, sentence b one clip scoring 0
    estimate, replicates = bootstrap.replicate_means([1, 1, 1, 1, 0], list("aaaab"))
    assert estimate[0] == pytest.approx(0.8)
    assert set(np.round(replicates[:, 0], 9)) == {0.0, 0.8, 1.0}


def test_clips_of_one_sentence_do_not_narrow_the_interval():
    # ten clips per sentence, all equal to their sentence's score: the interval is the
    # one of ten sentence scores, not of a hundred clips
    rng = np.random.default_rng(0)
    sentence_scores = rng.normal(0, 1, 10)
    clip_values = np.repeat(sentence_scores, 10)
    clip_units = np.repeat(np.arange(10), 10)
    by_clip = bootstrap.mean_interval(clip_values, clip_units)
    by_sentence = bootstrap.mean_interval(sentence_scores, np.arange(10))
    assert (by_clip.low, by_clip.high) == pytest.approx((by_sentence.low, by_sentence.high))
    as_if_independent = bootstrap.mean_interval(clip_values, np.arange(100))
    assert as_if_independent.high - as_if_independent.low < 0.5 * (by_clip.high - by_clip.low)


def test_interval_width_matches_the_normal_approximation_for_many_sentences():
    rng = np.random.default_rng(1)
    values = rng.normal(2.0, 1.0, 400)
    interval = bootstrap.mean_interval(values, np.arange(400))
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(400)
    assert (interval.high - interval.low) / 2 == pytest.approx(half_width, rel=0.1)
    assert interval.low < values.mean() < interval.high


def test_paired_difference_removes_what_both_models_share():
    # sentences differ a lot in difficulty; model a is always exactly 0.1 better
    rng = np.random.default_rng(2)
    difficulty = rng.normal(0, 1, 30)
    units = np.arange(30)
    a, b = difficulty + 0.1, difficulty
    diff = bootstrap.difference_interval(a, b, units)
    assert (diff.estimate, diff.low, diff.high) == pytest.approx((0.1, 0.1, 0.1))
    alone = bootstrap.mean_interval(a, units)
    assert alone.high - alone.low > 0.3


def test_ratio_of_means_is_paired_and_skips_unpaired_clips():
    b = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    a = 2 * np.nan_to_num(b, nan=0.0)
    a[-1] = 100.0  # unpaired: ignored
    ratio = bootstrap.ratio_interval(a, b, list("abcde"))
    assert (ratio.estimate, ratio.low, ratio.high) == pytest.approx((2.0, 2.0, 2.0))


def test_nan_scores_are_left_out_and_an_all_nan_column_stays_undefined():
    interval = bootstrap.mean_interval([1.0, np.nan, 3.0], ["a", "b", "c"])
    assert interval.estimate == 2.0 and interval.n_units == 3
    empty = bootstrap.mean_interval([np.nan, np.nan], ["a", "b"])
    assert np.isnan(empty.estimate) and np.isnan(empty.low) and np.isnan(empty.high)


def test_same_scores_give_the_same_interval():
    values = np.random.default_rng(5).normal(size=50)
    units = np.arange(50) // 2
    assert bootstrap.mean_interval(values, units) == bootstrap.mean_interval(values, units)


def test_unit_labels_must_match_the_rows():
    with pytest.raises(ValueError, match="unit labels"):
        bootstrap.mean_interval([1.0, 2.0], ["a"])


@pytest.mark.parametrize(
    ("target", "low", "high", "expected"),
    [
        (Target("r", low=0.85), 0.86, 0.90, "met"),
        (Target("r", low=0.85), 0.80, 0.90, "not shown"),  # the far end misses
        (Target("r", low=0.85), 0.70, 0.80, "not met"),
        (Target("ratio", high=0.5), 0.30, 0.45, "met"),
        (Target("ratio", high=0.5), 0.30, 0.55, "not shown"),
        (Target("var", 0.8, 1.25), 0.85, 1.20, "met"),
        (Target("var", 0.8, 1.25), 0.70, 1.30, "not shown"),  # overhangs both ends
        (Target("var", 0.8, 1.25), 1.30, 1.50, "not met"),
        (Target("r", low=0.85), float("nan"), float("nan"), "not measurable"),
    ],
)
def test_verdict_counts_only_what_the_whole_interval_supports(target, low, high, expected):
    interval = Interval((low + high) / 2, low, high, n_units=25)
    assert bootstrap.verdict(target, interval, n_frames=5000) == expected


def test_no_verdict_on_too_few_sentences_or_frames():
    good = Interval(0.95, 0.9, 0.99, n_units=bootstrap.MIN_UNITS)
    target = Target("r", low=0.85)
    assert bootstrap.verdict(target, good, bootstrap.MIN_FRAMES) == "met"
    few = Interval(0.95, 0.9, 0.99, n_units=bootstrap.MIN_UNITS - 1)
    assert bootstrap.verdict(target, few, 10**6) == bootstrap.TOO_FEW
    assert bootstrap.verdict(target, good, bootstrap.MIN_FRAMES - 1) == bootstrap.TOO_FEW
    assert Target("var", 0.8, 1.25).describe() == "0.8 to 1.25"
    assert Target("r", low=0.85).describe() == ">= 0.85"
