"""Keypoint exports for the tools people hand predicted faces to, and readers that read
each one back the way its consumer does.

``wav2kp predict --format`` picks any of :data:`FORMATS` (default :data:`DEFAULT_FORMATS`):

- ``vid2vid``: NVIDIA vid2vid's face folder (``wav2kp.handoff.vid2vid``).
- ``npz``: ``keypoints.npz`` (every array, full precision; see :func:`write_keypoints_npz`).
- ``csv``: ``keypoints.csv``, one row per frame: ``frame, time, x0, y0, ..., x67, y67``.
- ``openpose``: ``openpose/<seq>_<frame:012d>_keypoints.json``, one OpenPose (1.3) JSON per
  frame, named as OpenPose's ``--write_json`` names a video's frames:
  ``people[0].face_keypoints_2d`` holds 70 ``x, y, confidence`` triplets in pixels
  (OpenPose's default ``--keypoint_scale 0``; its face layout: the 68 iBUG points, then
  the subject's right and left pupil), plus ControlNet's ``canvas_width`` /
  ``canvas_height``. Confidence is 1 for a point and ``0, 0, 0`` marks a missing one:
  ControlNet's reader (sd-webui-controlnet / comfyui_controlnet_aux
  ``decode_json_as_poses``) drops points with confidence < 1, and its ``draw_facepose``
  takes pixel coordinates as they are (``is_normalized`` false) or scales normalised
  ones by the canvas. ``pose_keypoints_2d`` holds 18 missing body points (ControlNet's
  COCO layout), so its body drawing finds the list it indexes and draws nothing. The
  pupils are the reference video's MediaPipe iris centres (468 right, 473 left), carried
  onto the composed eyes; missing when the reference has no iris track.
- ``fsvid2vid``: imaginaire's few-shot vid2vid face test data (``configs/projects/
  fs_vid2vid/face_forensics``): ``fsvid2vid/reference`` (the reference clip's frames and
  their measured landmarks: the few-shot example) and ``fsvid2vid/driving`` (the predicted
  landmarks on the reference frames), each ``images/<seq>/%05d.jpg`` beside
  ``landmarks-dlib68/<seq>/%05d.json`` (a list of 68 ``[x, y]`` pixel pairs).
- ``mediapipe``: ``mediapipe478.npz``: the reference video's own MediaPipe 478-point mesh
  (``reference_lm478`` (N, 478, 3) pixels) and ``reference_index`` (T,), so
  ``reference_lm478[reference_index]`` is the mesh of the reference frame behind each
  output frame. It is **not** predicted: the model predicts 68 points, so this mesh has
  the reference's head, eyes and irises but the reference's own mouth, not the speech's.
- ``face``: ``face.mp4``, the reference video's own frames with the lower face warped so
  that it follows the predicted keypoints, the mouth taken from the reference's frames at
  a similar opening, with the speech, at the reference's size and frame rate
  (``wav2kp.handoff.face``: a warp, not a learnt generator). Needs a reference video.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wav2kp.atomic import write_csv, write_npz

FORMATS: dict[str, str] = {
    "vid2vid": "NVIDIA vid2vid face folder (test_keypoints/ + test_img/)",
    "npz": "keypoints.npz (all arrays)",
    "csv": "keypoints.csv (frame, time, x0, y0, ..., x67, y67)",
    "openpose": "OpenPose JSON per frame, 70 face points with pupils (ControlNet/DWPose)",
    "fsvid2vid": "imaginaire few-shot vid2vid face folders (reference/ + driving/)",
    "mediapipe": "the reference video's own 478-point MediaPipe mesh per output frame",
    "face": "face.mp4: the reference video with its lower face warped onto the keypoints",
}
DEFAULT_FORMATS: tuple[str, ...] = ("vid2vid", "npz", "csv")

OPENPOSE_VERSION = 1.3
OPENPOSE_BODY_POINTS = 18  # ControlNet's COCO body layout; all missing here
OPENPOSE_DIR = "openpose"
FSVID2VID_DIR = "fsvid2vid"
FSVID2VID_LANDMARKS = "landmarks-dlib68"
MEDIAPIPE_FILE = "mediapipe478.npz"
NPZ_FILE = "keypoints.npz"
CSV_FILE = "keypoints.csv"
PREVIEW_FILE = "preview.mp4"
FACE_FILE = "face.mp4"
IRIS_CENTRES = (468, 473)  # MediaPipe refined mesh: subject's right, left iris centre
EYE_CORNERS = ((36, 39), (42, 45))  # 68-point outer/inner corners of the same eyes


class ExportError(ValueError):
    """A format that cannot be written for this input; the message says why."""


def parse_formats(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"vid2vid,openpose"`` or a list -> known format names in the given order
    (duplicates dropped); None or empty -> :data:`DEFAULT_FORMATS`."""
    if spec is None:
        return DEFAULT_FORMATS
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [item.strip().lower() for item in items if item.strip()]
    if not names:
        return DEFAULT_FORMATS
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ExportError(
            f"--format: unknown format {', '.join(map(repr, unknown))}; "
            f"choose from {','.join(FORMATS)}"
        )
    return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------- npz / csv


def keypoints_table(times: np.ndarray, landmarks: np.ndarray):
    """One row per frame: ``frame, time, x0, y0, ..., x67, y67`` (pixels, 3 decimals)."""
    import pandas as pd

    landmarks = np.asarray(landmarks)
    columns = {"frame": np.arange(len(times)), "time": np.round(times, 6)}
    for k in range(68):
        columns[f"x{k}"] = np.round(landmarks[:, k, 0], 3)
        columns[f"y{k}"] = np.round(landmarks[:, k, 1], 3)
    return pd.DataFrame(columns)


def write_keypoints_csv(path: str | os.PathLike, times, landmarks) -> Path:
    return write_csv(path, keypoints_table(times, landmarks))


def write_keypoints_npz(path: str | os.PathLike, **arrays) -> Path:
    """``keypoints.npz``: whatever arrays predict hands over (``times``, ``landmarks``,
    ``pupils``, ``predicted``, ``reference_index``, ...), no pickles."""
    return write_npz(path, **arrays)


# --------------------------------------------------------------------------- pupils


def _eye_frame(corner_a: np.ndarray, corner_b: np.ndarray):
    axis = corner_b - corner_a
    normal = np.stack([-axis[..., 1], axis[..., 0]], axis=-1)
    return axis, normal


def pupils_in_eye_coordinates(lm68: np.ndarray, lm478: np.ndarray) -> np.ndarray:
    """(N, 2, 2): each iris centre as ``(u, v)`` along / across the line between its
    eye's corners (0, 0 = outer corner, 1, 0 = inner corner), so it can be carried onto
    another frame's eye. NaN where the mesh, the iris or the eye corners are missing."""
    lm68 = np.asarray(lm68, dtype=np.float64)
    lm478 = np.asarray(lm478, dtype=np.float64)
    out = np.full((len(lm68), 2, 2), np.nan)
    if lm478.ndim != 3 or lm478.shape[1] <= max(IRIS_CENTRES):
        return out  # a 468-point mesh (no refined iris)
    for eye, (centre, (a, b)) in enumerate(zip(IRIS_CENTRES, EYE_CORNERS, strict=True)):
        corner_a = lm68[:, a]
        axis, normal = _eye_frame(corner_a, lm68[:, b])
        offset = lm478[:, centre, :2] - corner_a
        norm2 = (axis**2).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, eye, 0] = (offset * axis).sum(axis=1) / norm2
            out[:, eye, 1] = (offset * normal).sum(axis=1) / norm2
    return out


def pupils_on_frames(lm68: np.ndarray, eye_coordinates: np.ndarray) -> np.ndarray:
    """(T, 2, 2) pixel pupils: :func:`pupils_in_eye_coordinates` values placed on the
    eyes of ``lm68`` (T, 68, 2). NaN stays NaN (a missing pupil is never guessed)."""
    lm68 = np.asarray(lm68, dtype=np.float64)
    uv = np.asarray(eye_coordinates, dtype=np.float64)
    out = np.empty((len(lm68), 2, 2))
    for eye, (a, b) in enumerate(EYE_CORNERS):
        axis, normal = _eye_frame(lm68[:, a], lm68[:, b])
        out[:, eye] = lm68[:, a] + uv[:, eye, :1] * axis + uv[:, eye, 1:] * normal
    return out


# --------------------------------------------------------------------------- OpenPose


def openpose_frame(lm68: np.ndarray, pupils: np.ndarray | None, size: tuple[int, int]) -> dict:
    """One frame as OpenPose's ``--write_json`` writes it (pixel coordinates, the default
    ``--keypoint_scale 0``), with ControlNet's canvas size. 68 + 2 pupil points."""
    face = np.full((70, 2), np.nan)
    face[:68] = lm68
    if pupils is not None:
        face[68:] = pupils
    values: list[float] = []
    for x, y in face:
        if np.isfinite(x) and np.isfinite(y):
            values += [round(float(x), 2), round(float(y), 2), 1.0]
        else:
            values += [0.0, 0.0, 0.0]
    person = {
        "person_id": [-1],
        "pose_keypoints_2d": [0.0] * (3 * OPENPOSE_BODY_POINTS),
        "face_keypoints_2d": values,
        "hand_left_keypoints_2d": [],
        "hand_right_keypoints_2d": [],
        "pose_keypoints_3d": [],
        "face_keypoints_3d": [],
        "hand_left_keypoints_3d": [],
        "hand_right_keypoints_3d": [],
    }
    width, height = size
    return {
        "version": OPENPOSE_VERSION,
        "people": [person],
        "canvas_width": int(width),
        "canvas_height": int(height),
    }


def openpose_name(seq: str, frame: int) -> str:
    """OpenPose's file name for frame ``frame`` of a video called ``seq``."""
    return f"{seq}_{frame:012d}_keypoints.json"


def write_openpose(
    folder: str | os.PathLike,
    seq: str,
    landmarks: np.ndarray,
    pupils: np.ndarray | None,
    size: tuple[int, int],
) -> int:
    """One JSON per frame into ``folder`` (written plainly: callers stage the whole
    output folder and move it into place when complete). Returns the frame count."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, lm in enumerate(landmarks):
        frame = openpose_frame(lm, None if pupils is None else pupils[i], size)
        (folder / openpose_name(seq, i)).write_text(json.dumps(frame, separators=(",", ":")))
    return len(landmarks)


def read_openpose_face(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int]]:
    """Face points and canvas size as ControlNet reads an OpenPose JSON
    (``decode_json_as_poses``): triplets from ``people[0].face_keypoints_2d``, a point with
    confidence < 1 is missing (NaN here), canvas from ``canvas_width`` / ``canvas_height``.
    Returns ((K, 2) pixels, (width, height))."""
    data = json.loads(Path(path).read_text())
    people = data.get("people") or []
    if not people:
        raise ValueError(f"{path}: no person in 'people'")
    numbers = people[0].get("face_keypoints_2d") or []
    if len(numbers) % 3:
        raise ValueError(f"{path}: face_keypoints_2d is not x, y, confidence triplets")
    triplets = np.asarray(numbers, dtype=np.float64).reshape(-1, 3)
    points = np.where(triplets[:, 2:] < 1.0, np.nan, triplets[:, :2])
    return points, (int(data["canvas_width"]), int(data["canvas_height"]))


def render_openpose_face(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8: the face conditioning image ControlNet's ``draw_facepose`` draws
    from these points (white dots of radius 3 on black; normalised coordinates are
    scaled by the canvas, pixel coordinates used as they are; points at x or y <= 0.01
    skipped), for checking an export against what the consumer will see."""
    import cv2

    width, height = size
    canvas = np.zeros((height, width, 3), np.uint8)
    present = points[np.isfinite(points).all(axis=1)]
    normalised = len(present) > 0 and bool((np.abs(present) <= 1).all())
    scale = (width, height) if normalised else (1.0, 1.0)
    for x, y in present:
        x, y = int(x * scale[0]), int(y * scale[1])
        if x > 0.01 and y > 0.01:
            cv2.circle(canvas, (x, y), 3, (255, 255, 255), thickness=-1)
    return canvas


# --------------------------------------------------------------------------- few-shot vid2vid


FrameSource = Callable[[int], "np.ndarray | Path"]


def _place_image(source, target: Path, seen: dict) -> None:
    """Put a frame image at ``target``: a hard link to an already placed copy of the same
    source file (a looped reference repeats frames), else a copy / an encoded array."""
    import shutil

    import cv2

    if isinstance(source, (str, Path)):
        source = Path(source)
        first = seen.get(source)
        if first is not None:
            try:
                os.link(first, target)
                return
            except OSError:
                pass  # no hard links here (another file system): copy instead
        if source.suffix.lower() in (".jpg", ".jpeg"):
            shutil.copyfile(source, target)
        else:
            image = cv2.imread(str(source), cv2.IMREAD_COLOR)
            if image is None or not cv2.imwrite(str(target), image):
                raise OSError(f"{source}: cannot read the reference frame image")
        seen[source] = target
        return
    image = cv2.cvtColor(np.asarray(source, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"{target}: could not write the jpg")


def _write_fs_sequence(root: Path, seq: str, names, landmarks, frame_for) -> None:
    images = root / "images" / seq
    marks = root / FSVID2VID_LANDMARKS / seq
    images.mkdir(parents=True, exist_ok=True)
    marks.mkdir(parents=True, exist_ok=True)
    seen: dict = {}
    for name, lm, index in zip(names, landmarks, range(len(names)), strict=True):
        points = [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(lm)]
        (marks / f"{name}.json").write_text(json.dumps(points))
        _place_image(frame_for(index), images / f"{name}.jpg", seen)


def write_fsvid2vid(
    root: str | os.PathLike,
    seq: str,
    landmarks: np.ndarray,
    frame_for: FrameSource,
    reference_name: str,
    reference_landmarks: np.ndarray,
    reference_frame_for: FrameSource,
) -> dict:
    """imaginaire few-shot vid2vid test data under ``root``: ``reference/`` holds the
    reference clip's frames with a complete measured face (the few-shot example; at least
    3, imaginaire's minimum at inference) and ``driving/`` the predicted landmarks on the
    reference frames behind each output frame. Returns what the config needs."""
    root = Path(root)
    reference_landmarks = np.asarray(reference_landmarks, dtype=np.float64)
    complete = np.flatnonzero(np.isfinite(reference_landmarks).all(axis=(1, 2)))
    if len(complete) < 3:
        raise ExportError(
            f"fsvid2vid: the reference {reference_name} has {len(complete)} frames with a "
            "whole face; imaginaire needs at least 3 for its few-shot example"
        )
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if len(landmarks) < 3 or not np.isfinite(landmarks).all():
        raise ExportError("fsvid2vid: needs at least 3 complete predicted frames")
    _write_fs_sequence(
        root / "reference", reference_name, [f"{i:05d}" for i in complete],
        reference_landmarks[complete], lambda k: reference_frame_for(int(complete[k])),
    )  # fmt: skip
    _write_fs_sequence(
        root / "driving", seq, [f"{i:05d}" for i in range(len(landmarks))], landmarks, frame_for
    )
    return {
        "test_roots": [str((root / "reference").resolve()), str((root / "driving").resolve())],
        "few_shot_seq_index": 0,
        "driving_seq_index": 1,
        "frames": int(len(landmarks)),
    }


def read_fsvid2vid(root: str | os.PathLike, min_length: int = 3) -> list[dict]:
    """Read an imaginaire folder dataset the way its test loader does (paired folder
    metadata, then ``decode_json``): for each root (``reference``, ``driving``) and each
    sequence found under ``images`` (sorted ``.jpg`` stems), the landmark file of every
    frame (``landmarks-dlib68/<seq>/<stem>.json``, a (68, 2) list). Returns the inference
    mapping in imaginaire's order (sequences grouped by length in order of first
    appearance, roots in config order): dicts with ``root``, ``sequence``, ``filenames``,
    ``landmarks`` (N, 68, 2) and ``image_paths``. Raises if a frame misses its landmark
    file, a file is not 68 pairs, or a sequence is shorter than ``min_length`` (imaginaire
    skips those: sequence length 2 + 1 few-shot frame at inference)."""
    root = Path(root)
    by_length: dict[int, list[dict]] = {}
    for part in ("reference", "driving"):
        base = root / part
        for data_type in ("images", FSVID2VID_LANDMARKS):
            if not (base / data_type).is_dir():
                raise ValueError(f"{base}: missing the {data_type!r} folder")
        sequences = sorted(
            str(p.parent.relative_to(base / "images")) for p in (base / "images").rglob("*.jpg")
        )
        for seq in dict.fromkeys(sequences):
            images = sorted((base / "images" / seq).glob("*.jpg"))
            names = [p.stem for p in images]
            marks = []
            for name in names:
                path = base / FSVID2VID_LANDMARKS / seq / f"{name}.json"
                if not path.is_file():
                    raise ValueError(f"{path}: landmark file missing for {seq}/{name}.jpg")
                points = np.asarray(json.loads(path.read_text()), dtype=np.float64)
                if points.shape != (68, 2):
                    raise ValueError(f"{path}: {points.shape} values, expected 68 [x, y] pairs")
                marks.append(points)
            if len(names) < min_length:
                raise ValueError(
                    f"{base / 'images' / seq}: {len(names)} frames; imaginaire skips "
                    f"sequences shorter than {min_length} at inference"
                )
            by_length.setdefault(len(names), []).append(
                {"root": part, "sequence": seq, "filenames": names,
                 "landmarks": np.stack(marks), "image_paths": images}
            )  # fmt: skip
    return [entry for group in by_length.values() for entry in group]


def imaginaire_face_crop(landmarks: np.ndarray, image_size: tuple[int, int]) -> list[int]:
    """imaginaire's inference face crop ``[min_y, max_y, min_x, max_x]``
    (``get_face_bbox_for_data`` with ``is_inference``), ``image_size`` = (height, width)."""
    points = np.asarray(landmarks)
    min_y, max_y = int(points[:, 1].min()), int(points[:, 1].max())
    min_x, max_x = int(points[:, 0].min()), int(points[:, 0].max())
    x_cen, y_cen = (min_x + max_x) // 2, (min_y + max_y) // 2
    height, width = image_size
    w = h = max_x - min_x
    x_cen = max(w, min(width - w, x_cen))
    y_cen = max(h * 1.25, min(height - h * 0.75, y_cen))
    min_x = x_cen - w
    min_y = y_cen - h * 1.25
    return [int(v) for v in (min_y, min_y + h * 2, min_x, min_x + w * 2)]


# --------------------------------------------------------------------------- MediaPipe 478


def write_mediapipe(
    path: str | os.PathLike,
    times: np.ndarray,
    reference_index: np.ndarray,
    reference_lm478: np.ndarray,
    reference_times: np.ndarray,
    size: tuple[int, int],
) -> Path:
    """``mediapipe478.npz``: the reference's own mesh and which reference frame is behind
    each output frame (see the module docstring: the mesh is not predicted)."""
    lm478 = np.asarray(reference_lm478, dtype=np.float32)
    if lm478.ndim != 3 or lm478.shape[1] < 468:
        raise ExportError("mediapipe: the reference has no MediaPipe mesh to export")
    return write_npz(
        path,
        times=np.asarray(times, dtype=np.float64),
        reference_index=np.asarray(reference_index, dtype=np.int32),
        reference_lm478=lm478,
        reference_times=np.asarray(reference_times, dtype=np.float64),
        width=np.int32(size[0]),
        height=np.int32(size[1]),
        predicted=np.bool_(False),
    )


# --------------------------------------------------------------------------- all formats


@dataclass
class Prediction:
    """Everything the formats are written from: one predicted sequence on its reference."""

    sequence: str  # name of the sequence (folder / file stem in the formats)
    times: np.ndarray  # (T,) seconds
    landmarks: np.ndarray  # (T, 68, 2) composed keypoints, reference frame pixels
    predicted: np.ndarray  # (T, 68, 2) the model's raw output (its own canvas)
    pupils: np.ndarray | None  # (T, 2, 2) right, left pupil; None when unknown
    reference_index: np.ndarray  # (T,) reference frame behind each output frame
    reference_missing: np.ndarray  # (T,) bool: that reference face was interpolated
    reference: object  # wav2kp.handoff.vid2vid.ReferenceTrack
    reference_lm478: np.ndarray | None  # (N, 478, 3) the reference's mesh, if known
    fps: float
    speech: str | os.PathLike = ""  # the speech file (vid2vid's mux command)
    audio: np.ndarray | None = None  # the speech samples (face.mp4's sound track) ...
    audio_rate: int = 0  # ... at this rate
    reference_first_frame: int = 0  # reference_index 0 is this frame of the extraction


@dataclass
class Written:
    files: dict[str, str]  # format -> path relative to the folder
    seconds: dict[str, float]  # format -> seconds taken
    problems: list[str]  # vid2vid self-check
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # format -> CPU of this process
    vid2vid: object = None  # wav2kp.handoff.vid2vid.Vid2vidExport when written
    handoff: dict | None = None  # its predict.json block (wav2kp.handoff.vid2vid.handoff_summary)


def write_formats(
    folder: str | os.PathLike, formats: Sequence[str], prediction: Prediction,
    staged: bool = False,
) -> Written:  # fmt: skip
    """Write each of ``formats`` into ``folder`` (vid2vid first: the npz holds the
    mapping to its frames). ``staged``: ``folder`` is a new staging folder moved into
    place whole when complete (``wav2kp.predict.staging``), so the vid2vid tree is written without
    a temp file per frame, and its check screens long sequences
    (``wav2kp.handoff.vid2vid.inspect_tree``'s ``screen``)."""
    from wav2kp.handoff import vid2vid

    folder = Path(folder)
    p = prediction
    track = p.reference
    n_frames = len(p.landmarks)
    names = parse_formats(list(formats))
    out = Written({}, {}, [])
    for name in sorted(names, key=lambda n: n != "vid2vid"):
        begun, cpu = time.perf_counter(), time.process_time()
        if name == "vid2vid":
            composition = vid2vid.Composition(p.landmarks, p.reference_index, p.reference_missing)
            out.vid2vid = vid2vid.export_composition(
                folder / vid2vid.EXPORT_DIR, p.sequence, composition, track, fresh=staged
            )
            out.handoff = vid2vid.handoff_summary(out.vid2vid, p.fps, p.speech, screen=staged)
            out.problems = out.handoff["problems"]
            out.files[name] = vid2vid.EXPORT_DIR
        elif name == "npz":
            out.files[name] = NPZ_FILE
            pupils = np.full((n_frames, 2, 2), np.nan) if p.pupils is None else p.pupils
            write_keypoints_npz(
                folder / out.files[name], times=p.times, landmarks=p.landmarks,
                pupils=pupils.astype(np.float32), predicted=p.predicted,
                reference_index=p.reference_index, reference_missing=p.reference_missing,
                reference_first_frame=np.int32(p.reference_first_frame),
                fps=np.float64(p.fps), width=np.int32(track.size[0]),
                height=np.int32(track.size[1]),
                **(out.vid2vid.npz_fields() if out.vid2vid is not None else {}),
            )  # fmt: skip
        elif name == "csv":
            out.files[name] = CSV_FILE
            write_keypoints_csv(folder / out.files[name], p.times, p.landmarks)
        elif name == "openpose":
            out.files[name] = OPENPOSE_DIR
            write_openpose(folder / OPENPOSE_DIR, p.sequence, p.landmarks, p.pupils, track.size)
        elif name == "fsvid2vid":
            out.files[name] = FSVID2VID_DIR
            write_fsvid2vid(
                folder / FSVID2VID_DIR, p.sequence, p.landmarks,
                lambda i: track.frame(int(p.reference_index[i])),
                track.name, track.landmarks, track.frame,
            )  # fmt: skip
        elif name == "mediapipe":
            if p.reference_lm478 is None:
                raise ExportError("mediapipe: the reference has no MediaPipe mesh to export")
            out.files[name] = MEDIAPIPE_FILE
            write_mediapipe(folder / MEDIAPIPE_FILE, p.times, p.reference_index,
                            p.reference_lm478, track.times, track.size)  # fmt: skip
        elif name == "face":
            from wav2kp.handoff import face as face_render

            renderer = face_render.FaceRenderer(track, p.reference_lm478)
            out.files[name] = FACE_FILE
            face_render.write_face_video(folder / FACE_FILE, renderer, p.times, p.landmarks,
                                         p.audio, p.audio_rate or None)  # fmt: skip
        out.seconds[name] = time.perf_counter() - begun
        out.cpu_seconds[name] = time.process_time() - cpu
    out.files = {name: out.files[name] for name in names}  # the order asked for
    return out
