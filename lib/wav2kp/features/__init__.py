"""Stage 02 (notebook 02_features): the train/val/test split, audio features (MFCC or
log-mel) with their train statistics, and the audio-visual sync check."""
