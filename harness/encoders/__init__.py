"""Encoders: checkpoints in their published formats -> token (or pooled) vectors."""
