"""``detect_anomaly``: make a backward that produces NaN/inf raise, naming the forward op and
showing where in the user's code it was created."""

from __future__ import annotations

import functools

from . import graph

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]


def is_anomaly_enabled() -> bool:
    return graph.ANOMALY[0]


class detect_anomaly:
    """Context manager / decorator: record the creation stack of every node, and check every
    gradient a node computes for NaN/inf (slow: for debugging)."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        self._prev = []

    def __enter__(self):
        self._prev.append(graph.ANOMALY[0])
        graph.ANOMALY[0] = bool(self.check_nan)
        return self

    def __exit__(self, *exc):
        graph.ANOMALY[0] = self._prev.pop()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return wrapper


set_detect_anomaly = detect_anomaly
