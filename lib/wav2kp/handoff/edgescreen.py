"""Which frames of a long sequence the exact vid2vid check must draw.

The exact check (``wav2kp.handoff.vid2vid.inspect_tree`` -> ``edgemap.crop_reach``) fits every
3-point piece of every frame with vid2vid's own solver (``leastsq``, Levenberg-Marquardt),
about 1-2 ms per frame: most of ``wav2kp predict``'s time on long speech. This screen
answers, for all frames at once and in closed form, a weaker question: is the frame
*surely* fine, i.e. every face-edge pixel vid2vid can draw lies inside the frame and the
crop box, every edge draws something, and no piece sits where the solver's last bits
decide (|a| near vid2vid's drop threshold 1, two equal abscissae)? The bounds are
conservative:

- a piece's abscissae run from its first to its last point (``linspace``), truncated to
  int and widened by vid2vid's 2x2 brush (one pixel towards negative);
- its ordinates lie between the extremes of the exact quadratic (or line) through the
  integer points on that span (ends and vertex), widened by :data:`MARGIN` pixels for the
  solver's rounding (it converges to the exact interpolant to ~1e-9 px), truncation and
  the brush;
- a piece counts as drawn only when |a| < 1 - :data:`TOLERANCE`, dropped only when
  |a| > 1 + :data:`TOLERANCE`; anything between makes the frame unsure.

A frame that is surely fine has ``crop_reach`` share 1, nothing cut, nothing off the frame,
no empty edge. What the screen cannot rule out is a solver failure (``leastsq`` not
converging, where vid2vid's run would stop), which needs two equal abscissae or
ill-conditioning: frames with equal abscissae are unsure; the others are covered by
the regular sample of :func:`frames_to_check` (and none has ever been seen on a face).
"""

from __future__ import annotations

import numpy as np

from wav2kp.plots import edgemap

MARGIN = 1.0  # pixels beyond the exact curve's extremes (solver rounding + truncation)
TOLERANCE = 1e-6  # |a| this close to 1: whether vid2vid drops the piece is the solver's call
EXACT_ALL_BELOW = 1800  # sequences this short (a minute at 29.97 fps) are checked whole
SAMPLE_EVERY = 30  # longer ones: every 30th frame (one a second) plus every unsure frame


def with_forehead_all(points: np.ndarray) -> np.ndarray:
    """(T, 83, 2): ``edgemap.with_forehead`` of every frame at once (same numbers)."""
    points = np.rint(np.asarray(points, dtype=np.float64))
    jaw = points[:, :17]
    baseline = (jaw[:, 0, 1] + jaw[:, -1, 1]) / 2
    upper = jaw[:, 1:-1].copy()
    upper[..., 1] = np.trunc(baseline[:, None] + ((baseline[:, None] - upper[..., 1]) * 2) // 3)
    return np.concatenate([points, upper[:, ::-1]], axis=1)


def _piece_bounds(xy: np.ndarray):
    """For (T, k, 2) pieces (k = 2 or 3): x/y pixel bounds (T, 4) as (x_lo, y_lo, x_hi,
    y_hi) of what vid2vid can draw, whether it is surely drawn with pixels, surely
    dropped or empty, and unsure."""
    dx = np.abs(np.diff(xy[..., 0], axis=1)).max(axis=1)
    dy = np.abs(np.diff(xy[..., 1], axis=1)).max(axis=1)
    swap = dx < dy  # taller than wide: vid2vid fits x as a function of y
    u = np.where(swap[:, None], xy[..., 1], xy[..., 0])
    v = np.where(swap[:, None], xy[..., 0], xy[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        if xy.shape[1] == 3:
            distinct = (u[:, 0] != u[:, 1]) & (u[:, 1] != u[:, 2]) & (u[:, 0] != u[:, 2])
            s01 = (v[:, 1] - v[:, 0]) / (u[:, 1] - u[:, 0])
            s12 = (v[:, 2] - v[:, 1]) / (u[:, 2] - u[:, 1])
            a = (s12 - s01) / (u[:, 2] - u[:, 0])
            b = s01 - a * (u[:, 0] + u[:, 1])
            c = v[:, 0] - a * u[:, 0] ** 2 - b * u[:, 0]
        else:
            distinct = u[:, 0] != u[:, 1]
            a = np.zeros(len(u))
            b = (v[:, 1] - v[:, 0]) / (u[:, 1] - u[:, 0])
            c = v[:, 0] - b * u[:, 0]
        lo = np.minimum(u[:, 0], u[:, -1])
        hi = np.maximum(u[:, 0], u[:, -1])
        ends = np.stack([a * t**2 + b * t + c for t in (lo, hi)], axis=1)
        vertex = np.where(a != 0, -b / (2 * a), lo)
        inside = (vertex > lo) & (vertex < hi)
        at_vertex = np.where(inside, a * vertex**2 + b * vertex + c, ends[:, 0])
    v_lo = np.floor(np.minimum(ends.min(axis=1), at_vertex) - MARGIN) - 1
    v_hi = np.ceil(np.maximum(ends.max(axis=1), at_vertex) + MARGIN)
    u_lo, u_hi = lo - 1, hi
    bounds = np.where(
        swap[:, None],
        np.stack([v_lo, u_lo, v_hi, u_hi], axis=1),
        np.stack([u_lo, v_lo, u_hi, v_hi], axis=1),
    )
    finite = np.isfinite(xy).all(axis=(1, 2))
    near_one = np.abs(np.abs(a) - 1) <= TOLERANCE
    unsure = ~finite | ~distinct | ~np.isfinite(a) | near_one
    drawn = ~unsure & (np.abs(a) < 1) & (hi - lo >= 1)
    return bounds, drawn, unsure


def surely_fine(
    landmarks: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int]
) -> np.ndarray:
    """(T,) bool: frames whose exact check (``edgemap.crop_reach`` against ``box`` in a
    ``size`` frame) surely finds every face-edge pixel inside frame and box and no edge
    empty. False means "check exactly", not "wrong"."""
    points = with_forehead_all(landmarks)
    width, height = size
    x0, y0, x1, y1 = box
    left, top = max(x0, 0), max(y0, 0)
    right, bottom = min(x1, width) - 1, min(y1, height) - 1
    fine = np.full(len(points), edgemap.crop_fits(box, size))
    has_pixels = np.zeros((len(points), edgemap.N_EDGES), bool)
    for index, piece in edgemap._PIECES:
        bounds, drawn, unsure = _piece_bounds(points[:, piece])
        inside = (
            (bounds[:, 0] >= left) & (bounds[:, 1] >= top)
            & (bounds[:, 2] <= right) & (bounds[:, 3] <= bottom)
        )  # fmt: skip
        fine &= ~unsure & (inside | ~drawn)
        # a piece not drawn can still be a dropped one whose pixels are absent: fine
        has_pixels[:, index] |= drawn
    return fine & has_pixels.all(axis=1)


def frames_to_check(
    landmarks: np.ndarray,
    size: tuple[int, int],
    box: tuple[int, int, int, int],
    exact_all_below: int = EXACT_ALL_BELOW,
    sample_every: int = SAMPLE_EVERY,
) -> np.ndarray:
    """Sorted frame indices the exact check must draw: all of a sequence shorter than
    ``exact_all_below`` frames; else every frame :func:`surely_fine` cannot vouch for
    plus every ``sample_every``-th frame (the first and last included)."""
    n = len(landmarks)
    if n < exact_all_below:
        return np.arange(n)
    check = ~surely_fine(landmarks, size, box)
    check[::sample_every] = True
    check[-1] = True
    return np.flatnonzero(check)


def repeated_abscissae(landmarks: np.ndarray) -> np.ndarray:
    """(T,) bool: frames with a piece whose abscissae (x, or y where vid2vid swaps the
    axes of a piece taller than wide) repeat: the only pieces on which vid2vid's curve
    fit has been seen to fail (``edgemap.fit_failures``), so the frames to test for it."""
    points = with_forehead_all(landmarks)
    found = np.zeros(len(points), bool)
    for _, piece in edgemap._PIECES:
        xy = points[:, piece]
        dx = np.abs(np.diff(xy[..., 0], axis=1)).max(axis=1)
        dy = np.abs(np.diff(xy[..., 1], axis=1)).max(axis=1)
        u = np.where((dx < dy)[:, None], xy[..., 1], xy[..., 0])
        if u.shape[1] == 3:
            found |= (u[:, 0] == u[:, 1]) | (u[:, 1] == u[:, 2]) | (u[:, 0] == u[:, 2])
        else:
            found |= u[:, 0] == u[:, 1]
    return found


def frames_at_risk(landmarks: np.ndarray) -> np.ndarray:
    """(T,) bool: frames where vid2vid's curve fit may fail (:func:`repeated_abscissae`)
    or an edge may draw nothing (no piece of it surely drawn): the frames to draw
    exactly before handing them over."""
    points = with_forehead_all(landmarks)
    risky = repeated_abscissae(landmarks)
    has_pixels = np.zeros((len(points), edgemap.N_EDGES), bool)
    for index, piece in edgemap._PIECES:
        _, drawn, _ = _piece_bounds(points[:, piece])
        has_pixels[:, index] |= drawn
    return risky | ~has_pixels.all(axis=1)
