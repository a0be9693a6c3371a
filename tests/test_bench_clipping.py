"""``wav2kp bench clipping``: the measurement behind predict's clipping threshold."""

from __future__ import annotations

import numpy as np
import pytest
from wav2kp.benchmarks import clipping
from wav2kp.predict.predict import clipped_share


@pytest.mark.parametrize("share", clipping.LEVELS)
def test_the_gain_puts_the_asked_share_of_samples_at_full_scale(share):
    rng = np.random.default_rng(0)
    native = (0.15 * rng.standard_normal((44100, 2))).astype(np.float32)
    clipped = clipping.clip_hard(native, clipping.clipping_gain(native, share))
    assert np.abs(clipped).max() <= 1.0
    assert clipped_share(clipped) == pytest.approx(share, abs=1e-4)


def test_threshold_is_the_lowest_level_whose_median_file_falls_below_the_bound():
    # per level, three files' r with their unclipped prediction (medians 1, 0.95, 0.85, 0.95)
    r = {0.0: (1.0, 1.0, 1.0), 0.05: (0.99, 0.95, 0.5), 0.1: (0.95, 0.85, 0.8),
         0.2: (0.99, 0.95, 0.2)}  # fmt: skip
    rows = [{"file": f"f{k}", "level": level, "share": level, "r": value, "variance_ratio": 1.0}
            for level, values in r.items() for k, value in enumerate(values)]  # fmt: skip
    table, threshold = clipping.summarise(rows, bound=0.9)
    assert threshold == 0.1  # not 0.05, whose worst file alone falls below
    assert [row["median_r"] for row in table] == [1.0, 0.95, 0.85, 0.95]
    assert [row["worst_r"] for row in table] == [1.0, 0.5, 0.8, 0.2]
    assert clipping.summarise(rows, bound=0.5)[1] is None
