"""Offline demo corpus: espeak-ng Brazilian Portuguese speech lip-synced onto two real
public-domain portraits (see ``wav2kp.demo.corpus``)."""

from wav2kp.demo.corpus import build_corpus, ensure_demo_corpus

__all__ = ["build_corpus", "ensure_demo_corpus"]
