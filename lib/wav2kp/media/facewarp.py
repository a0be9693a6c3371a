"""The warp shared by the demo portraits (``wav2kp.demo.face``) and the talking face
rendered from predicted keypoints (``wav2kp.handoff.face``): a backward displacement field
applied with one ``cv2.remap``, and the MediaPipe mesh contours both place it on.

- :func:`remap`: output pixel p shows the image at ``(map_x[p], map_y[p])`` (bilinear,
  reflected border), either over the whole frame or inside a box only.
- :func:`tps_displacement`: a dense, smooth displacement field inside a box that moves
  given control points exactly (a thin-plate spline, evaluated on a coarse grid and
  resized: the field is smooth, and that keeps it cheap on one core).
"""

from __future__ import annotations

import cv2
import numpy as np

# MediaPipe face mesh contours, each from the subject's right mouth corner to the left
UPPER_INNER_LIP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER_LIP = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
UPPER_OUTER_LIP = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER_LIP = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]

Box = tuple[slice, slice]  # (rows, cols)


def remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray,
          box: Box | None = None) -> np.ndarray:  # fmt: skip
    """``image`` resampled backwards: output pixel p shows ``image`` at ``(map_x[p],
    map_y[p])`` (absolute source pixels). With ``box``, the maps cover that box only and
    the rest of the frame is ``image`` unchanged (a copy)."""
    map_x = np.asarray(map_x, dtype=np.float32)
    map_y = np.asarray(map_y, dtype=np.float32)
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if box is None:
        return warped
    out = image.copy()
    out[box] = warped
    return out


def box_grid(box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) of every pixel of ``box``, float32."""
    rows, cols = box
    return np.meshgrid(
        np.arange(cols.start, cols.stop, dtype=np.float32),
        np.arange(rows.start, rows.stop, dtype=np.float32),
    )


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r = r2 log(r2) / 2 (0 at r = 0)."""
    return 0.5 * r2 * np.log(np.maximum(r2, 1e-20))


def tps_displacement(
    controls: np.ndarray, values: np.ndarray, box: Box, step: int = 4,
    smoothing: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Dense (dx, dy) over ``box`` (float32, the box's shape) by a thin-plate spline
    through ``controls`` (K, 2) pixels with ``values`` (K, 2): at a control point the
    field equals its value, in between it bends as little as possible. ``smoothing``
    (pixels squared, relative to the controls' spread) keeps coincident controls with
    different values (a closed mouth's lips) solvable. Evaluated every ``step`` pixels
    and resized linearly (the field is smooth at that scale)."""
    controls = np.asarray(controls, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    rows, cols = box
    height, width = rows.stop - rows.start, cols.stop - cols.start
    if height <= 0 or width <= 0:
        raise ValueError(f"empty warp box {box}")
    origin = np.array([cols.start, rows.start], dtype=np.float64)
    scale = float(max(height, width))
    c = (controls - origin) / scale  # unit box: a well-conditioned system
    k = len(c)
    r2 = (c[:, None, 0] - c[None, :, 0]) ** 2 + (c[:, None, 1] - c[None, :, 1]) ** 2
    system = np.zeros((k + 3, k + 3))
    system[:k, :k] = _tps_kernel(r2) + smoothing * np.eye(k)
    system[:k, k] = 1.0
    system[:k, k + 1 :] = c
    system[k, :k] = 1.0
    system[k + 1 :, :k] = c.T
    rhs = np.zeros((k + 3, 2))
    rhs[:k] = values
    coef = np.linalg.solve(system, rhs)
    # coarse node grid spanning the box edge to edge, evenly spaced (about ``step``)
    nx = max(2, int(np.ceil((width - 1) / step)) + 1)
    ny = max(2, int(np.ceil((height - 1) / step)) + 1)
    gx = np.linspace(0, width - 1, nx) / scale
    gy = np.linspace(0, height - 1, ny) / scale
    px, py = (a.reshape(-1, 1).astype(np.float32) for a in np.meshgrid(gx, gy))
    cx, cy = c[None, :, 0].astype(np.float32), c[None, :, 1].astype(np.float32)
    field = _tps_kernel((px - cx) ** 2 + (py - cy) ** 2) @ coef[:k].astype(np.float32)
    affine = coef[k:].astype(np.float32)
    field += affine[0] + px * affine[1] + py * affine[2]
    field = np.ascontiguousarray(field.reshape(ny, nx, 2), dtype=np.float32)
    # bilinear between nodes (node i sits at pixel i * (size - 1) / (n - 1))
    xs = np.arange(width, dtype=np.float32) * np.float32((nx - 1) / max(width - 1, 1))
    ys = np.arange(height, dtype=np.float32) * np.float32((ny - 1) / max(height - 1, 1))
    mx, my = np.meshgrid(xs, ys)
    dense = cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(dense[..., 0]), np.ascontiguousarray(dense[..., 1])
