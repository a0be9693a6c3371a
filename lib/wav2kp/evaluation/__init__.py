"""Stage 05 (notebook 05_evaluation): scoring trained models and baselines on held-out
clips, bootstrap intervals, target verdicts, the results file and README block."""
