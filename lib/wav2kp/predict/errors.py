"""The error ``wav2kp predict`` reports in one line, shared by its reference and output
folder modules (below all three, so none imports another for it)."""

from __future__ import annotations


class PredictError(ValueError):
    """Input that cannot be predicted from; the message names the file or option and
    says what to do, in one line."""
