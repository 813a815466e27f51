"""Transfers: NumPy round trips, .to('cpu') and back, tolist/item, DLPack, several devices."""

from __future__ import annotations

import numpy as np

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure
from polyten_conformance.samples import make

from .conftest import mark


def _m(op, kernel):
    return mark(op=op, area="transfer", tier="transfer", kernel=kernel)


def _arrays(dtype):
    rng = np.random.default_rng(H.seed_for("transfer", dtype))
    a = make(rng, (3, 4), dtype)
    return [("0-d", make(rng, (), dtype)), ("empty", make(rng, (0, 3), dtype)),
            ("(3, 4)", a), ("transposed", a.T), ("strided", a[:, ::2]),
            ("3-d", make(rng, (2, 1, 3), dtype))]


def _same(host, want, label, problems):
    host = np.asarray(host)
    if host.dtype != want.dtype:
        problems.append(f"{label}: dtype {host.dtype}, expected {want.dtype}")
    elif host.shape != want.shape:
        problems.append(f"{label}: shape {host.shape}, expected {want.shape}")
    elif not np.array_equal(host, want, equal_nan=want.dtype.kind in "fc"):
        problems.append(f"{label}: values changed\n    got:      {H.fmt_array(host)}\n"
                        f"    expected: {H.fmt_array(want)}")


def _fail(what, problems, conf, dtype):
    if problems:
        raise ConformanceFailure(f"{what} [{dtype}] (backend {conf.backend!r}):\n  "
                                 + "\n  ".join(problems))


@_m("asarray / numpy", "from_host")
def test_numpy_round_trip(dtype_name, conf):
    """polyten.asarray(ndarray) on the backend, then .numpy(): same dtype, shape, values."""
    pt = conf.pt
    problems = []
    for label, a in _arrays(dtype_name):
        t = pt.asarray(a, device=conf.backend)
        if t.dtype.name != dtype_name:
            problems.append(f"{label}: tensor dtype {t.dtype.name}, expected {dtype_name}")
        if t.device.type != conf.backend.split(":")[0]:
            problems.append(f"{label}: tensor on {t.device}, expected {conf.backend!r}")
        if tuple(t.shape) != a.shape:
            problems.append(f"{label}: tensor shape {tuple(t.shape)}, expected {a.shape}")
        _same(t.numpy(), a, f"{label} .numpy()", problems)
        _same(np.asarray(t), a, f"{label} np.asarray(t)", problems)
        _same(pt.tensor(a, device=conf.backend).numpy(), a, f"{label} polyten.tensor", problems)
    _fail("NumPy round trip", problems, conf, dtype_name)


@_m("to", "to_host")
def test_to_cpu_and_back(dtype_name, conf):
    """t.to('cpu') and back keep dtype and values; the device moves as asked."""
    pt = conf.pt
    problems = []
    for label, a in _arrays(dtype_name):
        t = pt.asarray(a, device=conf.backend)
        c = t.to("cpu")
        if c.device.type != "cpu":
            problems.append(f"{label}: .to('cpu') is on {c.device}")
        _same(c.numpy(), a, f"{label} .to('cpu')", problems)
        back = c.to(conf.backend)
        if back.device.type != conf.backend.split(":")[0]:
            problems.append(f"{label}: .to({conf.backend!r}) is on {back.device}")
        if back.dtype.name != dtype_name:
            problems.append(f"{label}: round trip dtype {back.dtype.name}")
        _same(back.numpy(), a, f"{label} cpu -> {conf.backend}", problems)
    _fail("to('cpu') and back", problems, conf, dtype_name)


@_m("tolist / item", "to_host")
def test_tolist_and_item(dtype_name, conf):
    pt = conf.pt
    problems = []
    for label, a in _arrays(dtype_name):
        t = pt.asarray(a, device=conf.backend)
        if t.tolist() != a.tolist():
            problems.append(f"{label}: tolist() = {t.tolist()!r:.200}, expected "
                            f"{a.tolist()!r:.200}")
    one = _arrays(dtype_name)[0][1]
    item = pt.asarray(one, device=conf.backend).item()
    if item != one.item() or type(item) is not type(one.item()):
        problems.append(f"item() = {item!r} ({type(item).__name__}), expected {one.item()!r} "
                        f"({type(one.item()).__name__})")
    _fail("tolist / item", problems, conf, dtype_name)


@_m("from_dlpack", "from_dlpack")
def test_from_dlpack(dtype_name, conf):
    """polyten.from_dlpack of a tensor of this backend (and of a NumPy array on cpu)."""
    pt = conf.pt
    conf.need("from_dlpack")
    problems = []
    for label, a in _arrays(dtype_name):
        if label in ("transposed", "strided"):
            continue
        t = pt.asarray(a, device=conf.backend)
        try:
            d = pt.from_dlpack(t)
        except (BufferError, TypeError) as exc:
            if dtype_name == "bool" or "bool" in str(exc).lower():
                continue  # DLPack bool support varies by array library
            problems.append(f"{label}: from_dlpack raised {type(exc).__name__}: {exc}")
            continue
        except Exception as exc:
            problems.append(f"{label}: from_dlpack raised {type(exc).__name__}: {exc}")
            continue
        if d.dtype.name != dtype_name:
            problems.append(f"{label}: from_dlpack dtype {d.dtype.name}")
        _same(d.numpy(), a, f"{label} from_dlpack", problems)
    _fail("from_dlpack", problems, conf, dtype_name)


def _devices(conf, backend_obj):
    if not backend_obj.indexed:
        return 1
    try:
        return int(backend_obj.device_count())
    except Exception:
        return 1


@_m("to (between devices)", "from_host")
def test_between_devices(dtype_name, conf, backend_obj):
    """On a backend with several devices, t.to('name:1') moves data and keeps it intact."""
    n = _devices(conf, backend_obj)
    if n < 2:
        H.not_applicable(f"backend {conf.backend!r} has {n} device")
    pt = conf.pt
    name = conf.backend.split(":")[0]
    problems = []
    for label, a in _arrays(dtype_name):
        t = pt.asarray(a, device=f"{name}:0")
        u = t.to(f"{name}:1")
        if getattr(u.device, "index", None) != 1:
            problems.append(f"{label}: .to('{name}:1') is on {u.device}")
        _same(u.numpy(), a, f"{label} {name}:0 -> {name}:1", problems)
        v = pt.add(u, u)
        if getattr(v.device, "index", None) != 1:
            problems.append(f"{label}: an op on {name}:1 tensors ran on {v.device}")
        _same(u.to(f"{name}:0").numpy(), a, f"{label} {name}:1 -> {name}:0", problems)
    _fail("transfer between devices", problems, conf, dtype_name)


@_m("device mismatch", None)
def test_device_mismatch_is_an_error(conf, backend_obj):
    """An op on tensors of two devices raises DeviceMismatchError naming the op and both."""
    pt = conf.pt
    name = conf.backend.split(":")[0]
    if name != "cpu":
        other = "cpu"
    elif _devices(conf, backend_obj) > 1:
        other = f"{name}:1"
    else:
        H.not_applicable("cpu with one device: no second device to mismatch with")
    x = pt.ones(3, device=conf.backend)
    y = pt.ones(3, device=other)
    problems = []
    for code, fn in (("polyten.add(x, y)", lambda: pt.add(x, y)), ("x * y", lambda: x * y),
                     ("polyten.matmul(x, y)", lambda: pt.matmul(x, y)),
                     ("polyten.cat([x, y])", lambda: pt.cat([x, y])),
                     ("polyten.where(x > 0, x, y)", lambda: pt.where(x > 0, x, y))):
        try:
            fn()
            problems.append(f"{code} did not raise")
        except pt.DeviceMismatchError as exc:
            op = code.split("(")[0].replace("polyten.", "")
            if op in ("x * y",):
                op = "mul"
            if op not in str(exc):
                problems.append(f"{code}: the message does not name {op!r}: {exc}")
        except Exception as exc:
            if H.is_missing_error(exc):
                continue
            problems.append(f"{code} raised {type(exc).__name__}, not DeviceMismatchError: {exc}")
    if problems:
        raise ConformanceFailure(f"device mismatch ({conf.backend} vs {other}):\n  "
                                 + "\n  ".join(problems))
