"""Stage 03 (notebook 03_windowing): each keypoint frame's audio window, the target
normaliser (pose removal, neutral face, PCA) and the per-clip dataset (``ClipData``)."""
