"""Stage 01 (notebook 01_extraction): video -> audio, frame timestamps and 68 face keypoints
per frame (MediaPipe face mesh mapped to the iBUG points), gaps filled, head pose; and the
reader of what it writes (``reader``)."""
