"""Backend selection is scoped: contextvars per thread and per asyncio task."""

from __future__ import annotations

import asyncio
import threading

import pytest

import polyten


def test_default_backend_is_cpu_and_tensors_carry_their_device():
    assert polyten.get_backend() == "cpu"
    x = polyten.ones(2)
    assert x.device == polyten.device("cpu") and x.device == "cpu"
    assert str(x.device) == "cpu" and repr(x.device) == "device(type='cpu')"
    assert x.get_device() == -1 and x.is_cpu and not x.is_cuda


def test_with_backend_scopes_and_restores(cpu2):
    assert polyten.get_backend() == "cpu"
    with polyten.backend("cpu2") as dev:
        assert dev is cpu2 and polyten.get_backend() == "cpu2"
        y = polyten.zeros(2)
        with polyten.backend("cpu"):
            assert polyten.zeros(1).device.type == "cpu"
        assert polyten.get_backend() == "cpu2"
    assert polyten.get_backend() == "cpu"
    assert y.device.type == "cpu2"
    # tensors keep their backend after the scope: ops run there
    assert (y + 1).device.type == "cpu2"


def test_set_backend_does_not_leak_into_other_threads(cpu2):
    seen = {}

    def worker():
        seen["before"] = polyten.get_backend()
        polyten.set_backend("cpu2")
        seen["after"] = polyten.get_backend()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"before": "cpu", "after": "cpu2"}
    assert polyten.get_backend() == "cpu"


def test_asyncio_tasks_do_not_leak(cpu2):
    async def task(name, delay):
        polyten.set_backend(name)
        await asyncio.sleep(delay)
        return polyten.get_backend(), polyten.ones(1).device.type

    async def main():
        return await asyncio.gather(task("cpu2", 0.02), task("cpu", 0.01))

    assert asyncio.run(main()) == [("cpu2", "cpu2"), ("cpu", "cpu")]
    assert polyten.get_backend() == "cpu"


def _device_pattern(lib, outer, inner, kind):
    """Where new tensors go under ``with device`` blocks, as letters: "O" on ``outer``'s
    device, "I" on ``inner``'s (both libraries run the same script)."""
    x = lib.ones(2, device=inner)
    got = []

    def where(t):
        got.append("O" if kind(t) == kind(outer) else "I")

    with outer as d:
        assert d is outer or d == outer
        where(lib.ones(2))
        where(lib.ones(2, device=inner))  # a named device wins
        where(lib.zeros_like(x))  # made from a tensor: its device
        where(x.new_ones(2))
        where(lib.tensor([1.0]))
        where(lib.arange(3))
        where(lib.empty(2))
        with inner:
            where(lib.ones(1))
        where(lib.ones(1))
        with outer:  # the same device object again
            where(lib.ones(1))
        where(lib.ones(1))
    where(lib.ones(1))
    return "".join(got)


def test_with_device_scopes_new_tensors_as_torch_device_does(cpu2):
    got = _device_pattern(polyten, cpu2, polyten.device("cpu"), lambda t: t.device.type
                          if isinstance(t, polyten.Tensor) else t.type)
    assert got == "OIIIOOOIOOOI"
    assert polyten.get_backend() == "cpu"
    torch = pytest.importorskip("torch")
    # torch's "meta" device stands for a second device here
    assert _device_pattern(torch, torch.device("meta"), torch.device("cpu"),
                           lambda t: t.device.type if isinstance(t, torch.Tensor)
                           else t.type) == got


def test_with_device_restores_the_default_after_an_error_and_set_backend_inside(cpu2):
    with pytest.raises(ZeroDivisionError):
        with polyten.device("cpu2"):
            1 / 0
    assert polyten.get_backend() == "cpu"
    with polyten.device("cpu2"):
        polyten.set_backend("cpu")  # the block's end brings back what was before it
        assert polyten.ones(1).device == "cpu"
    assert polyten.get_backend() == "cpu"
    with polyten.backend("cpu2"), polyten.device("cpu"):
        assert polyten.ones(1).device == "cpu"
    assert polyten.get_backend() == "cpu"


def test_set_default_device_as_in_torch(cpu2):
    try:
        polyten.set_default_device("cpu2")
        assert polyten.get_default_device() is cpu2 and polyten.ones(2).device == "cpu2"
        assert polyten.ones(2, device="cpu").device == "cpu"
        seen = []
        t = threading.Thread(target=lambda: seen.append(polyten.ones(1).device.type))
        t.start()
        t.join()
        assert seen == ["cpu"]  # per thread, as torch's
        polyten.set_default_device(polyten.device("cpu"))
        assert polyten.ones(1).device == "cpu"
        polyten.set_default_device(cpu2)
        polyten.set_default_device(None)  # back to the process default
        assert polyten.get_default_device() == "cpu" and polyten.ones(1).device == "cpu"
    finally:
        polyten.set_default_device(None)
    torch = pytest.importorskip("torch")
    try:
        torch.set_default_device("meta")
        torch.set_default_device(None)
        assert torch.ones(1).device.type == "cpu"
    finally:
        torch.set_default_device(None)


def test_set_default_device_rejects_what_is_not_a_device():
    with pytest.raises(polyten.UnknownBackendError) as ei:
        polyten.set_default_device("gpu")
    assert "'gpu'" in str(ei.value) and "cpu" in str(ei.value)
    with pytest.raises(TypeError, match="expected a string such as 'cpu'"):
        polyten.set_default_device(3.5)
    with pytest.raises(ValueError, match="invalid device string"):
        polyten.set_default_device("cuda:x")
    assert polyten.get_backend() == "cpu"


def test_mixing_backends_names_op_both_devices_and_fix(cpu2):
    a = polyten.ones(2)
    b = polyten.ones(2, device="cpu2")
    with pytest.raises(polyten.DeviceMismatchError) as ei:
        a + b
    msg = str(ei.value)
    assert msg.startswith("add:") and "cpu" in msg and "cpu2" in msg and ".to(" in msg
    assert (a + b.to("cpu")).tolist() == [2.0, 2.0]


def test_to_moves_between_backends_and_keeps_values(cpu2):
    a = polyten.tensor([1.5, -2.0], dtype=polyten.float64)
    b = a.to("cpu2")
    assert b.device.type == "cpu2" and b.dtype is polyten.float64
    assert b.tolist() == [1.5, -2.0]
    c = b.to("cpu", polyten.float32)
    assert c.device.type == "cpu" and c.dtype is polyten.float32
    assert a.to("cpu") is a
    assert a.to(a) is a


@pytest.mark.parametrize("text, parsed", [
    ("cpu", ("cpu", None)), ("cuda", ("cuda", None)), ("cuda:1", ("cuda", 1)),
    (" CUDA : 3 ", ("cuda", 3)), ("my_backend:0", ("my_backend", 0)),
])
def test_device_grammar(text, parsed):
    from polyten.dispatch import parse_device_string
    assert parse_device_string(text) == parsed


@pytest.mark.parametrize("bad", ["", "cuda:", "cuda:-1", ":1", "cu da", "cuda:1:2", "1cpu"])
def test_device_grammar_rejects(bad):
    from polyten.dispatch import parse_device_string
    with pytest.raises(ValueError, match="TYPE:INDEX"):
        parse_device_string(bad)


def test_device_objects_are_interned_and_validated():
    assert polyten.device("cpu") is polyten.device("cpu:0") is polyten.device("cpu")
    with pytest.raises(ValueError, match="single device"):
        polyten.device("cpu:1")
    with pytest.raises(TypeError, match="expected a string"):
        polyten.device(3.5)
