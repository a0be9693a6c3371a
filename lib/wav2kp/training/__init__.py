"""Stage 04 (notebook 04_training): the models, one training run, checkpoints, loading a
trained model for inference, and what works on prepared clips at training time
(waveform augmentation, synthetic voices, A/V lag correction, the silence gate, motion
calibration). Notebook 04's whole run (final models with their validation and ablation
runs, which are also scored) is ``wav2kp.studies.train_run``."""
