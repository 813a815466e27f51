"""NumPy for the data pipeline's host arrays, imported on first use.

Samplers, collation and the worker protocol work on host (NumPy) arrays -- the format every
backend's ``from_host`` takes -- but importing ``polyten.data`` must not load an array library
(only backends do that).  ``np`` here is a stand-in whose first read of an attribute imports
NumPy and keeps the attribute, so later reads are plain attribute reads.
"""

from __future__ import annotations


class _LazyNumPy:
    def __getattr__(self, name: str):
        import numpy
        value = getattr(numpy, name)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return "<numpy, imported on first use by polyten.data>"


np = _LazyNumPy()
