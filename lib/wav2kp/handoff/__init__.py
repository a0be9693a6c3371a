"""Stage 06 (notebook 06_vid2vid_handoff): keypoints into NVIDIA vid2vid's face dataset
layout (edge maps, crops), exports and previews."""
