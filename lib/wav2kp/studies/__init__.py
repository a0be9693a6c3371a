"""Studies that train and score, above both training and evaluation: notebook 04's
training run (``train_run``), cross-validation (``cv``), the unseen-voice lever study and
final check (``levers``), the committed result pages (``pages``); ``python -m
wav2kp.studies`` is their command line."""
