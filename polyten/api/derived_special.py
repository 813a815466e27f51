"""Placeholder filled in this stop."""

from __future__ import annotations

__all__: list = []

TENSOR_METHODS: dict = {}
