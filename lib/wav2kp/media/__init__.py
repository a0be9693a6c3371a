"""Video and audio container I/O through the ffmpeg binary shipped by imageio-ffmpeg.

``probe``/``decode`` read (extraction); ``encode`` writes mp4 with an audio track
(demo corpus, previews, side-by-side videos).
"""
