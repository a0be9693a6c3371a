"""MediaPipe face mesh in tracking mode, following one person through a clip.

``FaceMeshTracker.process(rgb)`` returns the followed face's 478 points in pixels (x, y,
and z in x's pixel scale) or None. With several faces in view it starts on the largest
and then keeps the one nearest to the previous frame's face, so a second person
entering the shot does not steal the track.
"""

from __future__ import annotations

import os
from types import TracebackType

import numpy as np

# MediaPipe's C++ side logs through glog/absl; keep its start-up chatter off the console.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class FaceMeshTracker:
    """Context manager around ``mediapipe.solutions.face_mesh.FaceMesh``.

    One tracker per clip: tracking mode carries state from frame to frame.
    """

    def __init__(
        self,
        max_faces: int = 2,
        refine: bool = True,
        static: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        import mediapipe as mp

        self.max_faces = int(max_faces)
        self.refine = bool(refine)
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=bool(static),
            max_num_faces=self.max_faces,
            refine_landmarks=self.refine,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._previous_centre: np.ndarray | None = None
        self.n_faces_last = 0

    def process(self, rgb: np.ndarray) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB -> (478, 3) float32 pixels of the followed face, or None."""
        frame = np.asarray(rgb)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}"
            )
        height, width = frame.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(frame))
        faces = result.multi_face_landmarks or []
        self.n_faces_last = len(faces)
        if not faces:
            return None
        scale = np.array([width, height, width], dtype=np.float32)
        candidates = [
            np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32) * scale
            for face in faces
        ]
        chosen = self._choose(candidates)
        self._previous_centre = chosen[:, :2].mean(axis=0)
        return chosen

    def _choose(self, candidates: list[np.ndarray]) -> np.ndarray:
        if len(candidates) == 1:
            return candidates[0]
        if self._previous_centre is None:
            areas = [np.prod(c[:, :2].max(axis=0) - c[:, :2].min(axis=0)) for c in candidates]
            return candidates[int(np.argmax(areas))]
        distances = [
            np.linalg.norm(c[:, :2].mean(axis=0) - self._previous_centre) for c in candidates
        ]
        return candidates[int(np.argmin(distances))]

    def reset(self) -> None:
        """Forget the followed face (e.g. after a long gap a new person may be in view)."""
        self._previous_centre = None

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> FaceMeshTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
