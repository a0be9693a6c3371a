"""Hand-off to NVIDIA vid2vid's face model: a realistic keypoint track and its folder.

vid2vid (``--dataset_mode face``) reads ``<root>/test_keypoints/<seq>/*.txt`` (68 rows of
integer ``x,y`` in full-frame pixels) beside ``<root>/test_img/<seq>/*.jpg`` (real frames of
the target person: they set the canvas and give the background edges), same count, same
sorted names.

Audio models predict mouth and jaw motion only. Drawn on a frozen head that looks dead, so
:func:`compose_on_reference` puts the predicted mouth/jaw deformation onto a real head
track of the target speaker (head pose, blinks, brows of a reference clip), in that clip's
frame coordinates, looping (ping-pong) the reference when the speech is longer.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from wav2kp.atomic import atomic_path, write_text

PHASE = "test"
KEYPOINT_LINE = re.compile(r"^-?\d+,-?\d+$")
# Points that do not move when speaking: fix the head's similarity pose per frame.
STABLE_POINTS = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])
MOUTH_POINTS = np.arange(48, 68)
# How much of each jaw point follows the mouth (0 at the ears, 1 around the chin).
JAW_WEIGHTS = np.clip(1.6 * np.sin(np.linspace(0, np.pi, 17)) ** 2 - 0.3, 0, 1)


# --------------------------------------------------------------------------- export


def keypoint_dirs(root: str | os.PathLike, phase: str = PHASE) -> tuple[Path, Path]:
    root = Path(root)
    return root / f"{phase}_keypoints", root / f"{phase}_img"


def to_vid2vid_ints(lm68: np.ndarray) -> np.ndarray:
    """(68, 2) integer pixels as vid2vid reads them (rounded, not truncated)."""
    points = np.asarray(lm68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) keypoints, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("vid2vid keypoint files cannot hold missing points (NaN)")
    return np.rint(points).astype(np.int64)


def keypoint_text(lm68: np.ndarray) -> str:
    """The file content: 68 lines ``x,y`` (what ``np.savetxt(fmt='%d', delimiter=',')``
    writes for integer points)."""
    return "".join(f"{x},{y}\n" for x, y in to_vid2vid_ints(lm68))


FrameSource = Callable[[int], np.ndarray | Path]


def export_sequence(
    root: str | os.PathLike,
    seq: str,
    landmarks: np.ndarray,
    frame_for: FrameSource,
    phase: str = PHASE,
    jpeg_quality: int = 95,
) -> int:
    """Write one sequence: ``<root>/<phase>_keypoints/<seq>/%05d.txt`` and the matching
    ``<phase>_img/<seq>/%05d.jpg``. ``frame_for(i)`` gives frame ``i``'s image (RGB array,
    or the path of a jpg to copy). Files are written atomically; an earlier, longer export
    of the same sequence is trimmed so the two trees stay the same length. Returns the
    number of frames."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2) or len(landmarks) == 0:
        raise ValueError(f"landmarks must be (T>0, 68, 2), got {landmarks.shape}")
    kp_dir, img_dir = (d / seq for d in keypoint_dirs(root, phase))
    kp_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    size = None
    for i, lm in enumerate(landmarks):
        name = f"{i:05d}"
        write_text(kp_dir / f"{name}.txt", keypoint_text(lm))
        source = frame_for(i)
        target = img_dir / f"{name}.jpg"
        if isinstance(source, (str, Path)):
            source = Path(source)
            if source.suffix.lower() in (".jpg", ".jpeg"):
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
                continue
            image = cv2.imread(str(source), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{source}: cannot read the reference frame image")
        else:
            image = cv2.cvtColor(np.asarray(source, dtype=np.uint8), cv2.COLOR_RGB2BGR)
        if size is None:
            size = image.shape[:2]
        with atomic_path(target) as tmp:
            if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                raise OSError(f"{target}: could not write the jpg")
    for stale in (kp_dir, img_dir):
        for path in stale.iterdir():
            if path.stem.isdigit() and int(path.stem) >= len(landmarks):
                path.unlink()
    return len(landmarks)


def check_vid2vid_tree(root: str | os.PathLike, phase: str = PHASE) -> list[str]:
    """Everything vid2vid would trip over, as readable problems (empty list = fine).

    Same sequences in both trees, same number of files and matching sorted names per
    sequence, 68 integer ``x,y`` rows per keypoint file, readable images of one size per
    sequence.
    """
    kp_root, img_root = keypoint_dirs(root, phase)
    problems: list[str] = []
    for folder in (kp_root, img_root):
        if not folder.is_dir():
            problems.append(f"{folder}: folder missing")
    if problems:
        return problems
    kp_seqs = sorted(p.name for p in kp_root.iterdir() if p.is_dir())
    img_seqs = sorted(p.name for p in img_root.iterdir() if p.is_dir())
    if not kp_seqs:
        problems.append(f"{kp_root}: no sequences")
    if kp_seqs != img_seqs:
        problems.append(
            f"sequence folders differ: keypoints {kp_seqs} vs images {img_seqs} "
            f"({len(kp_seqs)} vs {len(img_seqs)})"
        )
    for seq in sorted(set(kp_seqs) & set(img_seqs)):
        txts = sorted(p for p in (kp_root / seq).iterdir() if p.suffix == ".txt")
        imgs = sorted(p for p in (img_root / seq).iterdir() if p.suffix.lower() in (".jpg", ".png"))
        if len(txts) != len(imgs):
            problems.append(
                f"{seq}: {len(txts)} keypoint files but {len(imgs)} images (must be equal)"
            )
        if [p.stem for p in txts] != [p.stem for p in imgs]:
            missing = sorted({p.stem for p in txts} ^ {p.stem for p in imgs})
            problems.append(f"{seq}: file names differ between the trees: {missing[:5]}")
        if not txts:
            problems.append(f"{seq}: empty sequence")
        for path in txts:
            problems.extend(_check_keypoint_file(path))
        sizes = set()
        for path in imgs:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                problems.append(f"{path}: image not readable")
            else:
                sizes.add(image.shape[:2])
        if len(sizes) > 1:
            problems.append(f"{seq}: images have different sizes {sorted(sizes)}")
    return problems


def _check_keypoint_file(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) != 68:
        return [f"{path}: {len(lines)} rows, vid2vid needs 68"]
    bad = [i for i, line in enumerate(lines) if not KEYPOINT_LINE.match(line)]
    if bad:
        return [
            f"{path}: row {bad[0] + 1} is {lines[bad[0]]!r}, vid2vid needs integers 'x,y' "
            f"({len(bad)} bad rows)"
        ]
    return []


def read_keypoint_file(path: str | os.PathLike) -> np.ndarray:
    """(68, 2) float array back from a vid2vid keypoint file (as vid2vid's np.loadtxt)."""
    return np.loadtxt(path, delimiter=",").reshape(-1, 2)


def vid2vid_test_command(
    root: str | os.PathLike, n_frames: int, name: str = "edge2face_512", single_gpu: bool = False
) -> str:
    """The vid2vid test command for this folder (run from a vid2vid checkout), printed and
    returned. ``--how_many`` covers every frame (vid2vid stops at 300 by default).

    vid2vid runs in its own PyTorch 0.4-era environment: its keypoint reader passes the
    float ``x[-1] - x[0]`` (from ``np.loadtxt``) to ``np.linspace`` as a count, which only
    NumPy < 1.18 accepts, whatever the file holds."""
    parts = [
        "python test.py",
        f"--name {name}",
        f"--dataroot {Path(root).resolve()}/",
        "--dataset_mode face --input_nc 15 --loadSize 512 --use_single_G",
    ]
    if single_gpu:
        parts.append("--n_scales_spatial 2 --ngf 64")
    parts.append(f"--how_many {max(int(n_frames), 1)}")
    command = " ".join(parts)
    print(command)
    return command


# --------------------------------------------------------------------------- reference


@dataclass
class ReferenceTrack:
    """A real head track of the target speaker: keypoints per frame and the frames."""

    name: str
    times: np.ndarray  # (N,) seconds
    landmarks: np.ndarray  # (N, 68, 2) pixels, NaN where missing
    size: tuple[int, int]  # (width, height)
    frame_paths: list[Path] = field(default_factory=list)  # one image per frame, or empty
    canvas_color: int = 96  # grey level of the plain canvas when there are no frames

    @property
    def n_frames(self) -> int:
        return len(self.times)

    def frame(self, index: int) -> np.ndarray | Path:
        """Frame ``index``'s image: its file when frames exist, else a plain canvas."""
        if self.frame_paths:
            return self.frame_paths[index]
        width, height = self.size
        return np.full((height, width, 3), self.canvas_color, np.uint8)

    def image(self, index: int) -> np.ndarray:
        """Frame ``index`` as an RGB array."""
        source = self.frame(index)
        if isinstance(source, np.ndarray):
            return source
        image = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{source}: cannot read the reference frame image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_reference_track(
    npz_path: str | os.PathLike, frames_dir: str | os.PathLike | None = None
) -> ReferenceTrack:
    """A reference track from an extraction result (``extracted/<clip_id>.npz``) and, if
    given and present, its kept frames folder (one image per decoded frame, sorted)."""
    npz_path = Path(npz_path)
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            times = np.asarray(data["times"], dtype=np.float64)
            landmarks = np.asarray(data["lm68"], dtype=np.float64)
            if "frame_status" in data:
                landmarks[np.asarray(data["frame_status"]) == 2] = np.nan
            size = (int(data["width"]), int(data["height"]))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{npz_path}: not a readable extraction result ({error})") from error
    frame_paths: list[Path] = []
    if frames_dir is not None and Path(frames_dir).is_dir():
        frame_paths = sorted(
            p for p in Path(frames_dir).iterdir() if p.suffix.lower() in (".jpg", ".png")
        )
        if len(frame_paths) != len(times):
            raise ValueError(
                f"{frames_dir}: {len(frame_paths)} frame images for {len(times)} frames "
                f"in {npz_path.name}"
            )
    return ReferenceTrack(npz_path.stem, times, landmarks, size, frame_paths)


def static_reference(face68: np.ndarray, size: tuple[int, int], name: str = "neutral"):
    """A one-frame track: a neutral face on a plain canvas (no head motion, no blinks)."""
    face = np.asarray(face68, dtype=np.float64)[None]
    return ReferenceTrack(name, np.zeros(1), face, (int(size[0]), int(size[1])))


def pingpong_indices(n_out: int, n_ref: int) -> np.ndarray:
    """Reference frame per output frame: forward, then backward, ... so that head motion
    stays continuous when the speech is longer than the reference clip."""
    if n_ref <= 0:
        raise ValueError("the reference track has no frames")
    if n_ref == 1:
        return np.zeros(n_out, dtype=int)
    period = 2 * (n_ref - 1)
    phase = np.arange(n_out) % period
    return np.where(phase < n_ref, phase, period - phase)


def reference_times(out_times: np.ndarray, ref_times: np.ndarray) -> np.ndarray | None:
    """The reference clip's time shown at each output time, ping-ponging (forward, then
    backward, ...); None when the reference has no time span (a single frame)."""
    out_times = np.asarray(out_times, dtype=np.float64)
    ref_times = np.asarray(ref_times, dtype=np.float64)
    start, span = ref_times[0], ref_times[-1] - ref_times[0]
    if len(ref_times) == 1 or span <= 0:
        return None
    phase = np.mod(out_times - out_times[0], 2 * span)
    return np.where(phase <= span, phase, 2 * span - phase) + start


def reference_indices(out_times: np.ndarray, ref_times: np.ndarray) -> np.ndarray:
    """Reference frame for each output time, ping-ponging in time (variable-rate safe)."""
    ref_times = np.asarray(ref_times, dtype=np.float64)
    local = reference_times(out_times, ref_times)
    if local is None:
        return pingpong_indices(len(out_times), len(ref_times))
    nearest = np.clip(np.searchsorted(ref_times, local), 1, len(ref_times) - 1)
    left_closer = (local - ref_times[nearest - 1]) <= (ref_times[nearest] - local)
    return np.where(left_closer, nearest - 1, nearest)


def _at_times(values: np.ndarray, times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values`` (N, ...) sampled at ``times``, linearly interpolated at ``at``."""
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(at, times, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(at), *values.shape[1:]))


# --------------------------------------------------------------------------- composition


def align_to_template(landmarks: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame moved onto ``template`` by the least-squares similarity of its stable
    points (``wav2kp.targets.fit_similarity``); returns the aligned frames and the pose
    (T, 4) ``[scale, angle, tx, ty]`` back to pixels, NaN where a frame is incomplete."""
    from wav2kp.targets import fit_similarity, remove_pose

    landmarks = np.asarray(landmarks, dtype=np.float64)
    pose = fit_similarity(template, landmarks, STABLE_POINTS)
    pose[~np.isfinite(landmarks).all(axis=(1, 2))] = np.nan
    return remove_pose(landmarks, pose), pose


def _rest_shape(aligned: np.ndarray) -> np.ndarray:
    """The mouth-closed shape: per-point median over the quarter of frames whose inner
    lips are closest together (speech opens the mouth; rest is when it closes)."""
    ok = np.isfinite(aligned).all(axis=(1, 2))
    frames = aligned[ok]
    opening = np.linalg.norm(frames[:, [61, 62, 63]] - frames[:, [67, 66, 65]], axis=2).mean(1)
    closest = np.argsort(opening)[: max(1, len(frames) // 4)]
    return np.median(frames[closest], axis=0)


def _fill_missing(aligned: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate missing frames' aligned shapes and head poses linearly in time (nearest
    valid frame at the ends; ``wav2kp.targets.fill_pose`` for the pose)."""
    from wav2kp.targets import fill_pose

    ok = np.isfinite(pose).all(axis=1) & np.isfinite(aligned).all(axis=(1, 2))
    if not ok.any():
        raise ValueError("the reference track has no frame with a detected face")
    pose = np.where(ok[:, None], pose, np.nan)
    filled_pose, _ = fill_pose(pose)
    idx = np.arange(len(aligned))
    flat = aligned.reshape(len(aligned), -1)
    filled = np.stack([np.interp(idx, idx[ok], flat[ok, k]) for k in range(flat.shape[1])], 1)
    return filled.reshape(aligned.shape), filled_pose


@dataclass
class Composition:
    landmarks: np.ndarray  # (T, 68, 2) pixels in the reference frame
    reference_index: np.ndarray  # (T,) reference frame used for each output frame
    reference_missing: np.ndarray  # (T,) bool: reference face was interpolated there


def compose_on_reference(
    predicted: np.ndarray,
    reference: ReferenceTrack,
    normalizer=None,
    speaker: str | None = None,
    out_times: np.ndarray | None = None,
    fps: float = 30000 / 1001,
    predicted_rest: np.ndarray | None = None,
) -> Composition:
    """Predicted mouth and jaw motion on the reference speaker's moving head.

    ``predicted``: (T, 68, 2) landmarks in any frame (e.g. ``predict_landmarks``), or
    (T, K) normalised targets together with their ``normalizer``
    (``wav2kp.targets.TargetNormalizer``; ``speaker`` picks the neutral face). Both
    sequences are aligned by the similarity of their stable points (eye corners, nose)
    onto the reference's median face. In that aligned space the output keeps the
    reference frame's brows, eyes (blinks), nose and upper jaw, and replaces the mouth
    and lower jaw by the reference's mouth-closed shape plus the prediction's deformation
    from its own mouth-closed shape (``predicted_rest``; default the normaliser's neutral
    face, else estimated from the prediction). The result is mapped back with the
    reference frame's head pose; the reference is ping-ponged when the speech is longer.
    """
    from wav2kp.targets import apply_pose

    predicted = np.asarray(predicted, dtype=np.float64)
    if predicted.ndim == 2:
        if normalizer is None:
            raise ValueError("predicted targets (T, K) need the normalizer that made them")
        predicted = normalizer.to_aligned(predicted, speaker)
    if predicted_rest is None and normalizer is not None:
        predicted_rest = normalizer.neutral_for(speaker)
    if predicted.ndim != 3 or predicted.shape[1:] != (68, 2) or len(predicted) == 0:
        raise ValueError(f"predicted landmarks must be (T>0, 68, 2), got {predicted.shape}")
    n_out = len(predicted)
    if out_times is None:
        out_times = np.arange(n_out) / float(fps)
    ref_lm = np.asarray(reference.landmarks, dtype=np.float64)
    ref_ok = np.isfinite(ref_lm).all(axis=(1, 2))
    if not ref_ok.any():
        raise ValueError(f"reference {reference.name}: no frame with a detected face")
    template = np.median(ref_lm[ref_ok], axis=0)

    ref_aligned, ref_pose = align_to_template(ref_lm, template)
    ref_rest = _rest_shape(ref_aligned)
    ref_aligned, ref_pose = _fill_missing(ref_aligned, ref_pose)

    pred_aligned, _ = align_to_template(predicted, template)
    pred_ok = np.isfinite(pred_aligned).all(axis=(1, 2))
    if not pred_ok.any():
        raise ValueError("no predicted frame is complete (all contain NaN)")
    if predicted_rest is None:
        pred_rest = _rest_shape(pred_aligned)
    else:
        pred_rest, _ = align_to_template(np.asarray(predicted_rest, float)[None], template)
        pred_rest = pred_rest[0]
    deformation = pred_aligned - pred_rest
    deformation[~pred_ok] = 0.0  # a missing prediction keeps the mouth at rest

    weights = np.zeros(68)
    weights[:17] = JAW_WEIGHTS
    weights[MOUTH_POINTS] = 1.0
    ref_index = reference_indices(out_times, reference.times)
    local = reference_times(out_times, reference.times)
    if local is None:
        head, pose = ref_aligned[ref_index], ref_pose[ref_index]
    else:  # head motion interpolated in time: smooth when the reference has another rate
        ref_t = np.asarray(reference.times, dtype=np.float64)
        pose = _at_times(ref_pose, ref_t, local)
        head = _at_times(ref_aligned, ref_t, local)
    speaking = ref_rest[None] + deformation
    composed = head + weights[None, :, None] * (speaking - head)
    pixels = apply_pose(composed, pose)
    return Composition(pixels, ref_index, ~ref_ok[ref_index])


def liveliness(landmarks: np.ndarray, fps: float = 30000 / 1001) -> dict:
    """How alive a keypoint track looks (what the original's frozen output lacked).

    ``head_translation_std_iod``: spread of the head position (stable-point centroid),
    ``head_rotation_std_deg``: spread of the head roll, ``blinks_per_minute``: eye
    closures (lid gap under half its median, per eye pair), ``mouth_opening_std_iod``:
    spread of the inner-lip gap. Distances in inter-ocular distances.
    """
    from wav2kp.targets import fit_similarity

    lm = np.asarray(landmarks, dtype=np.float64)
    ok = np.isfinite(lm).all(axis=(1, 2))
    lm = lm[ok]
    if len(lm) < 2:
        raise ValueError("need at least two complete frames")
    iod = np.median(np.linalg.norm(lm[:, 45] - lm[:, 36], axis=1))
    centroid = lm[:, STABLE_POINTS].mean(axis=1)
    pose = fit_similarity(np.median(lm, axis=0), lm, STABLE_POINTS)
    lids = np.linalg.norm(lm[:, [37, 38, 43, 44]] - lm[:, [41, 40, 47, 46]], axis=2).mean(1)
    closed = lids < 0.5 * np.median(lids)
    blinks = int(np.count_nonzero(closed[1:] & ~closed[:-1]) + int(closed[0]))
    gap = np.linalg.norm(lm[:, 66] - lm[:, 62], axis=1)
    return {
        "head_translation_std_iod": float(np.linalg.norm(centroid.std(axis=0)) / iod),
        "head_rotation_std_deg": float(np.degrees(np.unwrap(pose[:, 1]).std())),
        "blinks_per_minute": blinks / (len(lm) / fps) * 60.0,
        "mouth_opening_std_iod": float(gap.std() / iod),
    }


def export_composition(
    root: str | os.PathLike, seq: str, composition: Composition, reference: ReferenceTrack
) -> int:
    """vid2vid tree for a composition: its keypoints beside the reference frames used."""
    return export_sequence(
        root,
        seq,
        composition.landmarks,
        lambda i: reference.frame(int(composition.reference_index[i])),
    )


def plot_vid2vid_inputs(
    root: str | os.PathLike, seq: str, n_frames: int = 4, phase: str = PHASE, panel: int = 256
):
    """A figure read back from the exported files, as vid2vid will read them: for
    ``n_frames`` frames spread over the sequence, the reference image (cropped with
    vid2vid's face box, set on the first frame) above the edge map vid2vid draws from
    the keypoint file (Canny background of the image included)."""
    import matplotlib.pyplot as plt

    from wav2kp import edgemap

    kp_dir, img_dir = (d / seq for d in keypoint_dirs(root, phase))
    files = sorted(kp_dir.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"{kp_dir}: no keypoint files")
    picks = np.unique(np.linspace(0, len(files) - 1, n_frames).round().astype(int))
    first_image = cv2.imread(str(img_dir / f"{files[0].stem}.jpg"))
    if first_image is None:
        raise FileNotFoundError(f"{img_dir}: no readable image for {files[0].name}")
    size = (first_image.shape[1], first_image.shape[0])
    box = edgemap.crop_box(read_keypoint_file(files[0]), size)
    fig, axes = plt.subplots(2, len(picks), figsize=(2.6 * len(picks), 5.4), squeeze=False)
    for column, index in enumerate(picks):
        points = read_keypoint_file(files[index])
        image = cv2.imread(str(img_dir / f"{files[index].stem}.jpg"))
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        edges = edgemap.draw_edge_map(points, size, frame=rgb)
        axes[0, column].imshow(edgemap.crop_and_resize(rgb, box, panel))
        axes[1, column].imshow(edgemap.crop_and_resize(edges, box, panel), cmap="gray")
        axes[0, column].set_title(f"frame {files[index].stem}", fontsize=9)
        for ax in axes[:, column]:
            ax.set_axis_off()
    axes[0, 0].text(-0.05, 0.5, "test_img", rotation=90, transform=axes[0, 0].transAxes,
                    ha="right", va="center")  # fmt: skip
    axes[1, 0].text(-0.05, 0.5, "edge map", rotation=90, transform=axes[1, 0].transAxes,
                    ha="right", va="center")  # fmt: skip
    fig.tight_layout()
    return fig


def sequence_frames(root: str | os.PathLike, seq: str, phase: str = PHASE) -> Sequence[Path]:
    """The exported keypoint files of one sequence, sorted."""
    return sorted((keypoint_dirs(root, phase)[0] / seq).glob("*.txt"))
