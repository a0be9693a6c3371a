"""wav2kp: speech audio in, 68-point facial keypoint sequences out (vid2vid-ready)."""

__version__ = "0.1.0"
