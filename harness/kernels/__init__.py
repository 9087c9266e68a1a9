"""Fast kernels, kept apart from the documented wrappers."""
