"""The op table is the contract: the cpu backend implements every primitive, every composite
has a default, and every kernel name is an op."""

from __future__ import annotations

from polyten.dispatch import OPS, dispatcher, optable
from polyten.dispatch.registry import get


def test_cpu_backend_implements_every_primitive():
    cpu = get("cpu")
    assert optable.missing_primitives(cpu) == []


def test_every_composite_has_a_default_or_is_always_fused_on_cpu():
    for op in optable.composites():
        assert dispatcher.has_default(op.name), f"composite {op.name} has no default"


def test_every_cpu_kernel_is_an_op():
    cpu = get("cpu")
    assert set(cpu.kernels) <= set(OPS)


def test_table_entries_are_well_formed():
    for name, op in OPS.items():
        assert op.signature.startswith(name + "(")
        assert op.kind in ("primitive", "composite")
        assert op.accepted, name
