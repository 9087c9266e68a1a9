"""Compiled loops: a plain Python loop over arrays, compiled by numba (which ranx already brings)
on its first call, not at import (numba's start-up costs about a second), and cached on disk."""

from __future__ import annotations

import functools


def compiled(**options):
    """Decorator: the function compiled with ``numba.njit(cache=True, nogil=True, boundscheck=False,
    **options)`` when first called, then called compiled."""
    def wrap(loop):
        kernel = None

        @functools.wraps(loop)
        def call(*args):
            nonlocal kernel
            if kernel is None:
                import numba  # lazy: see the module docstring

                kernel = numba.njit(cache=True, nogil=True, boundscheck=False, **options)(loop)
            return kernel(*args)
        return call
    return wrap
