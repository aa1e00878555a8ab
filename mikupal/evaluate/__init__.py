"""Evaluation against benchmark gold labels, inter-run agreement, and emotion-map plots."""
