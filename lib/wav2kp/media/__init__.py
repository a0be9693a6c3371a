"""Video and audio container I/O.

``probe``/``decode`` read through PyAV (libavformat/libavcodec/libswscale in process:
stream metadata, rotation and each frame's timestamp from the container, no text
parsing); ``encode`` writes mp4 with an audio track through imageio-ffmpeg's ffmpeg
binary (demo corpus, previews, side-by-side videos).
"""
