"""polyten.save / polyten.load: safe (no pickle), atomic, checksummed safetensors checkpoints."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import polyten as pt
from polyten import nn
from polyten import serialization as ser
from polyten.serialization import CheckpointError

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
          "complex64", "complex128"]


def _values(name: str, shape, rng) -> np.ndarray:
    """Host values spanning the dtype: extremes, signed zeros, inf/nan for floats."""
    n = int(np.prod(shape))
    if name == "bool":
        return (rng.random(n) < 0.5).reshape(shape)
    if name.startswith(("int", "uint")):
        info = np.iinfo(name)
        v = rng.integers(info.min, info.max, size=n, dtype=name, endpoint=True)
        v[:2] = [info.min, info.max][:min(2, n)] if n else v[:0]
        return v.reshape(shape)
    real = "float32" if name == "complex64" else "float64" if name == "complex128" else name
    v = (rng.standard_normal(n) * 1e3).astype(real)
    special = np.array([np.inf, -np.inf, np.nan, -0.0], dtype=real)[:n]
    v[:len(special)] = special
    if name.startswith("complex"):
        v = v + 1j * (rng.standard_normal(n) * 1e-3).astype(real)
        v = v.astype(name)
    return v.reshape(shape)


def _bits(a: np.ndarray) -> bytes:
    """The exact bytes of ``a`` in C order (bit-exact comparison, NaN payloads included)."""
    return np.ascontiguousarray(a).tobytes()


def _roundtrip(obj, **kw):
    buf = io.BytesIO()
    pt.save(obj, buf)
    buf.seek(0)
    return pt.load(buf, **kw)


# ------------------------------------------------------------------------ import & format --
def test_import_polyten_loads_no_numpy_or_safetensors():
    code = ("import sys, polyten; polyten.save; polyten.load; "
            "print(sorted(m for m in ('numpy', 'safetensors') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_and_shape_kind_round_trips_bit_exactly(dtype, tmp_path):
    rng = np.random.default_rng(DTYPES.index(dtype))
    base = _values(dtype, (4, 6), rng)
    obj = {
        "scalar": pt.asarray(_values(dtype, (), rng)),
        "empty": pt.asarray(_values(dtype, (0, 3), rng)),
        "empty_1d": pt.asarray(_values(dtype, (0,), rng)),
        "vector": pt.asarray(_values(dtype, (5,), rng)),
        "matrix": pt.asarray(base),
        "transposed": pt.asarray(base).T,                 # non-contiguous
        "strided": pt.asarray(base)[1::2, ::3],           # a view with steps
        "cube": pt.asarray(_values(dtype, (2, 3, 4), rng)),
    }
    expected = {k: np.array(v.numpy()) for k, v in obj.items()}
    path = tmp_path / "ckpt.pt"
    pt.save(obj, path)
    for loaded in (pt.load(path), pt.load(str(path), map_location="cpu"), _roundtrip(obj)):
        assert list(loaded) == list(obj)
        for k, t in loaded.items():
            assert t.dtype.name == dtype and tuple(t.shape) == expected[k].shape, k
            got = t.numpy()
            assert got.dtype == expected[k].dtype
            assert _bits(got) == _bits(expected[k]), k
            assert t.requires_grad is False and t.device == "cpu"


def test_loaded_tensors_are_independent_and_writable():
    src = pt.arange(6.0)
    out = _roundtrip({"a": src, "b": pt.ones(3)})
    out["a"] += 1          # in place on the loaded tensor
    out["b"][0] = 7.0
    np.testing.assert_array_equal(src.numpy(), np.arange(6.0))
    np.testing.assert_array_equal(out["a"].numpy(), np.arange(6.0) + 1)
    np.testing.assert_array_equal(out["b"].numpy(), [7.0, 1.0, 1.0])


def test_nested_structure_round_trips_with_types_and_order():
    obj = OrderedDict([
        ("z", 1), ("a", [1, 2.5, -0.0, float("inf"), float("-inf"), None, True, False, "é✓"]),
        (3, (pt.float16, pt.complex128, pt.Size([2, 3]), pt.Size([]))),
        (-1, {"big": 2 ** 100, "tiny": 5e-324, "nested": [[], {}, ()]}),
    ])
    out = _roundtrip(obj)
    assert type(out) is OrderedDict and list(out) == ["z", "a", 3, -1]
    assert out["z"] == 1 and type(out["z"]) is int
    a = out["a"]
    assert a[:3] == [1, 2.5, -0.0] and type(a[0]) is int and type(a[1]) is float
    assert str(a[2]) == "-0.0" and a[3] == float("inf") and a[4] == float("-inf")
    assert a[5:] == [None, True, False, "é✓"] and type(a[6]) is bool
    assert out[3] == (pt.float16, pt.complex128, pt.Size([2, 3]), pt.Size([]))
    assert out[3][0] is pt.float16 and type(out[3][2]) is pt.Size
    assert out[-1] == {"big": 2 ** 100, "tiny": 5e-324, "nested": [[], {}, ()]}
    assert type(out[-1]) is dict
    nan = _roundtrip([float("nan")])[0]
    assert nan != nan
    # a bare tensor, a bare number
    np.testing.assert_array_equal(_roundtrip(pt.arange(3)).numpy(), [0, 1, 2])
    assert _roundtrip(4.5) == 4.5 and _roundtrip(None) is None


def test_one_tensor_object_is_stored_once_and_loads_as_one_tensor():
    t = pt.arange(1000.0)
    one, two = io.BytesIO(), io.BytesIO()
    pt.save({"a": t}, one)
    pt.save({"a": t, "b": t, "c": [t]}, two)
    assert len(two.getvalue()) - len(one.getvalue()) < 200  # no second copy of 8000 bytes
    two.seek(0)
    out = pt.load(two)
    assert out["a"] is out["b"] is out["c"][0]
    np.testing.assert_array_equal(out["a"].numpy(), np.arange(1000.0))


def test_parameters_and_grad_tensors_load_as_plain_tensors():
    p = nn.Parameter(pt.tensor([1.0, 2.0]))
    g = pt.tensor([3.0], requires_grad=True) * 2
    out = _roundtrip({"p": p, "g": g})
    for k in "pg":
        assert type(out[k]) is pt.Tensor and out[k].requires_grad is False
        assert out[k].grad_fn is None
    np.testing.assert_array_equal(out["p"].numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(out["g"].numpy(), [6.0])


def test_module_state_dict_round_trip_gives_identical_outputs(tmp_path):
    pt.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    sd = model.state_dict()
    ref = {k: np.array(v.numpy()) for k, v in sd.items()}
    path = tmp_path / "model.pt"
    pt.save(sd, path)

    pt.manual_seed(1)
    fresh = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    loaded = pt.load(path)
    assert type(loaded) is OrderedDict and list(loaded) == list(sd)
    for k, v in loaded.items():
        assert _bits(v.numpy()) == _bits(ref[k])
    assert fresh.load_state_dict(loaded) is not None

    x = np.random.default_rng(0).standard_normal((7, 5))
    # independent reference: the loaded weights in NumPy float64
    h = np.maximum(x @ ref["0.weight"].T + ref["0.bias"], 0.0)
    expected = h @ ref["2.weight"].T + ref["2.bias"]
    with pt.no_grad():
        got = fresh(pt.asarray(x)).numpy()
        orig = model(pt.asarray(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert _bits(got) == _bits(orig)


def test_optimizer_style_state_dict_keeps_int_keys_and_tuples():
    rng = np.random.default_rng(3)
    m0, m1 = rng.standard_normal((3, 2)), rng.standard_normal(4).astype(np.float32)
    sd = {"state": {0: {"step": 3, "exp_avg": pt.asarray(m0)},
                    1: {"step": 3, "exp_avg": pt.asarray(m1),
                        "max_exp_avg_sq": pt.asarray(m1 ** 2)}},
          "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8,
                            "weight_decay": 0, "amsgrad": False, "params": [0, 1]}]}
    out = _roundtrip(sd)
    assert list(out) == ["state", "param_groups"] and list(out["state"]) == [0, 1]
    assert all(type(k) is int for k in out["state"])
    assert out["state"][0]["step"] == 3
    assert _bits(out["state"][0]["exp_avg"].numpy()) == _bits(m0)
    assert _bits(out["state"][1]["exp_avg"].numpy()) == _bits(m1)
    assert _bits(out["state"][1]["max_exp_avg_sq"].numpy()) == _bits(m1 ** 2)
    assert out["param_groups"] == [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8,
                                    "weight_decay": 0, "amsgrad": False, "params": [0, 1]}]
    assert type(out["param_groups"][0]["betas"]) is tuple


def test_resuming_from_a_checkpoint_continues_training_identically(tmp_path):
    optim = pytest.importorskip("polyten.optim")
    if not hasattr(optim, "Adam"):
        pytest.skip("polyten.optim.Adam is not available")
    x = pt.asarray(np.random.default_rng(1).standard_normal((8, 3)))

    def make():
        pt.manual_seed(0)
        m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
        return m, optim.Adam(m.parameters(), lr=0.05, amsgrad=True)

    def steps(m, opt, n):
        for _ in range(n):
            opt.zero_grad()
            (m(x) ** 2).sum().backward()
            opt.step()

    model, opt = make()
    steps(model, opt, 2)
    pt.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 2},
            tmp_path / "ckpt.pt")
    steps(model, opt, 3)                         # the uninterrupted run

    ckpt = pt.load(tmp_path / "ckpt.pt")
    model2, opt2 = make()
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optim"])
    assert ckpt["epoch"] == 2
    steps(model2, opt2, 3)                       # the resumed run
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert _bits(a.numpy()) == _bits(b.numpy()), k


# ------------------------------------------------------------------------- map_location --
def test_map_location_variants_and_cross_backend_load(cpu2, tmp_path):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "x.pt"
    pt.save({"c": pt.asarray(host), "g": pt.asarray(host * 2, device=cpu2)}, path)

    out = pt.load(path)                     # each to the device it was saved from
    assert out["c"].device == "cpu" and out["g"].device == "cpu2"
    out = pt.load(path, map_location="cpu2")
    assert out["c"].device == "cpu2" and out["g"].device == "cpu2"
    out = pt.load(path, map_location=pt.device("cpu"))
    assert out["c"].device == "cpu" and out["g"].device == "cpu"
    out = pt.load(path, map_location={"cpu": "cpu2"})   # unlisted devices stay
    assert out["c"].device == "cpu2" and out["g"].device == "cpu2"
    out = pt.load(path, map_location={pt.device("cpu2"): pt.device("cpu")})
    assert out["c"].device == "cpu" and out["g"].device == "cpu"

    seen = []

    def to_cpu2(t, location):
        seen.append((location, t.device.type))
        return t.to("cpu2") if location == "cpu" else None
    out = pt.load(path, map_location=to_cpu2)
    assert sorted(seen) == [("cpu", "cpu"), ("cpu2", "cpu")]
    assert out["c"].device == "cpu2" and out["g"].device == "cpu2"
    out = pt.load(path, map_location=lambda t, loc: "cpu")
    assert out["g"].device == "cpu"
    for t, want in ((out["c"], host), (out["g"], host * 2)):
        assert _bits(t.numpy()) == _bits(want) and t.dtype == pt.float32

    # ops on the loaded tensors run on their backend
    g = pt.load(path)["g"]
    np.testing.assert_array_equal((g + g).numpy(), host * 4)


def test_unavailable_saved_device_suggests_map_location(tmp_path):
    from conftest import cpu_clone
    path = tmp_path / "x.pt"
    with cpu_clone("cpu9") as dev:
        pt.save({"w": pt.ones(2, device=dev)}, path)
    with pytest.raises(pt.BackendError, match=r"(?s)'cpu9'.*map_location='cpu'") as info:
        pt.load(path)
    assert str(path) in str(info.value)
    np.testing.assert_array_equal(pt.load(path, map_location="cpu")["w"].numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(pt.load(path, map_location={"cpu9": "cpu"})["w"].numpy(),
                                  [1.0, 1.0])
    with pytest.raises(pt.BackendError, match="map_location sends the tensors saved from "
                                              "'cpu9' there"):
        pt.load(path, map_location={"cpu9": "cpu8"})

    # a checkpoint from a GPU machine (its table says cuda:0), loaded where cuda may be absent
    raw = path.read_bytes()
    hdr = _header_len(raw)
    header = json.loads(raw[8:hdr])
    meta = header["__metadata__"]
    table = json.loads(meta["tensors"])
    table["w"]["device"] = "cuda:0"
    meta["tensors"] = json.dumps(table)
    meta["sha256"] = ser._digest(meta["structure"], meta["tensors"],
                                 ser._entries_for_digest(header))
    _write_header(path, header, raw[hdr:])
    try:
        on_cuda = pt.load(path)["w"]
    except pt.BackendError as e:
        assert "'cuda:0' (it was saved from that device)" in str(e)
        assert "map_location='cpu'" in str(e)
    else:  # a machine with a GPU
        assert on_cuda.device == "cuda:0"
    for where in ("cpu", {"cuda:0": "cpu"}, {"cuda": "cpu"}):   # a backend name maps cuda:N
        np.testing.assert_array_equal(pt.load(path, map_location=where)["w"].numpy(), [1, 1])


def test_bad_map_location_is_refused(tmp_path):
    buf = io.BytesIO()
    pt.save(pt.ones(1), buf)
    buf.seek(0)
    with pytest.raises(TypeError, match="map_location must be None, a device"):
        pt.load(buf, map_location=3)
    buf.seek(0)
    with pytest.raises(TypeError, match="callable returned int"):
        pt.load(buf, map_location=lambda t, loc: 3)
    with pytest.raises(ValueError, match="weights_only=False"):
        pt.load(buf, weights_only=False)


# --------------------------------------------------------------------------- refusals ----
def test_unsupported_objects_are_refused_naming_their_path(tmp_path):
    path = tmp_path / "x.pt"
    Point = namedtuple("Point", "x y")
    cases = [
        ({"model": {"fn": len}}, r"obj\['model'\]\['fn'\] is a function; checkpoints hold "
                                 r"tensors, numbers, strings, lists, tuples and dicts"),
        ({"model": {"fn": lambda: 0}}, r"obj\['model'\]\['fn'\] is a function"),
        ([1, {2}], r"obj\[1\] is a set"),
        ({"a": np.ones(2)}, r"obj\['a'\] is a numpy.ndarray \(convert NumPy values"),
        ({"m": nn.Linear(2, 2)}, r"obj\['m'\] is a .*Linear \(save its .state_dict\(\)"),
        ({"s": {0: [b"raw"]}}, r"obj\['s'\]\[0\]\[0\] is a bytes"),
        ({"p": Point(1, 2)}, r"obj\['p'\] is a .*Point.*namedtuples are not kept"),
        ({"k": {(1, 2): 3}}, r"obj\['k'\] has the key \(1, 2\) of type tuple; checkpoint "
                             r"dict keys must be str or int"),
        ({"k": {pt.float32: 1}}, r"key polyten.float32 of type dtype"),
        ({"d": pt.device("cpu")}, r"obj\['d'\] is a .*Device"),
    ]
    for obj, msg in cases:
        with pytest.raises(TypeError, match=msg):
            pt.save(obj, path)
    cyc = {"a": []}
    cyc["a"].append(cyc)
    with pytest.raises(ValueError, match=r"obj\['a'\]\[0\] contains itself"):
        pt.save(cyc, path)
    assert os.listdir(tmp_path) == []   # refused before touching the file system
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pt.save({}, tmp_path / "no" / "such" / "dir.pt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ser, "_MAX_HEADER", 1000)
        with pytest.raises(ValueError, match="store long lists of numbers as tensors"):
            pt.save({"losses": [0.5] * 1000}, path)
    assert os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match="f must be a path"):
        pt.save({}, 3)
    with pytest.raises(TypeError, match="f must be a path"):
        pt.load(3)


# ------------------------------------------------------------------------- atomic write --
def test_failed_save_leaves_old_file_intact_and_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    pt.save({"w": pt.arange(4.0), "step": 1}, path)
    before = path.read_bytes()
    real = ser._write_array
    calls = []

    def half_then_crash(fh, arr):
        calls.append(arr.nbytes)
        if len(calls) == 2:
            fh.write(memoryview(arr.reshape(-1).view("uint8"))[:arr.nbytes // 2])
            raise OSError(28, "No space left on device")
        real(fh, arr)

    monkeypatch.setattr(ser, "_write_array", half_then_crash)
    big = {"a": pt.ones(1000), "b": pt.zeros(1000), "c": pt.arange(10), "step": 2}
    with pytest.raises(OSError, match="No space left"):
        pt.save(big, path)
    assert len(calls) == 2
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    assert path.read_bytes() == before
    old = pt.load(path)
    assert old["step"] == 1 and _bits(old["w"].numpy()) == _bits(np.arange(4.0, dtype="f4"))

    # an interrupt (BaseException) mid-write is cleaned up too
    monkeypatch.setattr(ser, "_write_array", lambda fh, arr: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        pt.save(big, path)
    assert os.listdir(tmp_path) == ["ckpt.pt"] and path.read_bytes() == before

    # a failing rename (e.g. a full or read-only directory) too
    monkeypatch.undo()
    monkeypatch.setattr(ser.os, "replace", lambda a, b: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied")))
    with pytest.raises(PermissionError):
        pt.save(big, path)
    assert os.listdir(tmp_path) == ["ckpt.pt"] and path.read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and symlinks")
def test_overwrite_keeps_permissions_and_writes_through_symlinks(tmp_path):
    path = tmp_path / "ckpt.pt"
    pt.save({"v": 1}, path)
    os.chmod(path, 0o640)
    pt.save({"v": 2}, path)
    assert pt.load(path) == {"v": 2} and (os.stat(path).st_mode & 0o777) == 0o640
    link = tmp_path / "latest.pt"
    link.symlink_to(path)
    pt.save({"v": 3}, link)
    assert link.is_symlink() and pt.load(path) == {"v": 3}
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt", "latest.pt"]


# ------------------------------------------------------------------------------ integrity --
def _good_file(tmp_path):
    path = tmp_path / "good.pt"
    pt.save({"w": pt.arange(64.0).reshape(8, 8), "b": pt.ones(8, dtype=pt.int32),
             "meta": {"lr": 2.5, "name": "net"}}, path)
    return path, path.read_bytes()


def _header_len(raw: bytes) -> int:
    return 8 + struct.unpack("<Q", raw[:8])[0]


class _ReadOnlyStream:
    """A file object with read() only (a socket, a pipe): its size is unknown up front."""

    def __init__(self, data: bytes):
        self._b = io.BytesIO(data)

    def read(self, n=-1):
        return self._b.read(n)


def test_truncated_files_are_refused_at_every_stage(tmp_path):
    path, raw = _good_file(tmp_path)
    hdr = _header_len(raw)
    bad = tmp_path / "cut.pt"
    for cut in (0, 3, 8, 9, hdr // 2, hdr - 1, hdr, hdr + 5, (hdr + len(raw)) // 2,
                len(raw) - 1):
        bad.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError,
                           match=r"load: '.*cut\.pt': .*(truncated|fewer than the 8-byte)"):
            pt.load(bad)
        # the same through a stream that cannot tell its size up front
        stream = _ReadOnlyStream(raw[:cut])
        with pytest.raises(CheckpointError, match=r"truncated|fewer than the 8-byte"):
            pt.load(stream)


def test_flipped_data_byte_is_detected(tmp_path):
    path, raw = _good_file(tmp_path)
    hdr = _header_len(raw)
    for pos in (hdr, hdr + 100, len(raw) - 1):
        data = bytearray(raw)
        data[pos] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match=r"good\.pt'.*tensor '[wb]' is corrupted: its "
                                                  r"SHA-256 does not match"):
            pt.load(path)


def test_tampered_or_corrupted_header_is_detected(tmp_path):
    path, raw = _good_file(tmp_path)
    hdr = _header_len(raw)
    text = raw[8:hdr]
    # an edit that keeps valid JSON and the same length: the header checksum catches it
    assert text.count(b"2.5") == 1
    path.write_bytes(raw[:8] + text.replace(b"2.5", b"9.5") + raw[hdr:])
    with pytest.raises(CheckpointError, match="header was modified after saving"):
        pt.load(path)
    # a shape edited to match another byte range still fails the checksum
    header = json.loads(text)
    header["w"]["shape"] = [4, 16]
    _write_header(path, header, raw[hdr:])
    with pytest.raises(CheckpointError, match="header was modified"):
        pt.load(path)
    # broken JSON
    path.write_bytes(raw[:8] + b"{" + text[1:].replace(b'"', b"'", 3) + raw[hdr:])
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        pt.load(path)
    # bytes appended after the data
    path.write_bytes(raw + b"\x00")
    with pytest.raises(CheckpointError, match="unexpected bytes after the last tensor"):
        pt.load(path)


def _write_header(path, header: dict, data: bytes):
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def _forge(path, raw: bytes, edit, data=None):
    """Rewrite the header with ``edit(header)`` and a recomputed checksum, as a forger would:
    the checksums catch accidents and naive edits, these checks catch the rest."""
    hdr = _header_len(raw)
    header = json.loads(raw[8:hdr])
    edit(header)
    meta = header["__metadata__"]
    meta["sha256"] = ser._digest(meta["structure"], meta["tensors"],
                                 ser._entries_for_digest(header))
    _write_header(path, header, raw[hdr:] if data is None else data)


def test_forged_headers_with_valid_checksums_are_still_refused(tmp_path):
    path, raw = _good_file(tmp_path)
    cases = [
        (lambda h: h["__metadata__"].update(structure='{"eval": "__import__(\'os\')"}'),
         "unknown entry"),
        (lambda h: h["__metadata__"].update(structure='{"tensor": "nope"}'),
         "refers to a tensor 'nope' that the file does not hold"),
        (lambda h: h["__metadata__"].update(structure="[" * 100000 + "]" * 100000),
         "header is corrupted|nested too deeply"),
        (lambda h: h["w"].update(data_offsets=[4, 260]), "byte ranges overlap or leave a gap"),
        (lambda h: h["w"].update(dtype="F64"), r"stored as F64 \[8, 8\], which cannot hold"),
        (lambda h: h["w"].update(shape=[8, 9]), "does not match its shape"),
        (lambda h: h["w"].update(shape=[8, -8]), "header entry of tensor 'w' is malformed"),
        (lambda h: h.pop("b"), "tensor table does not match"),
    ]
    for edit, msg in cases:
        _forge(path, raw, edit)
        with pytest.raises(CheckpointError, match=msg):
            pt.load(path)


def test_unknown_format_version_is_refused(tmp_path):
    path, raw = _good_file(tmp_path)
    hdr = _header_len(raw)
    header = json.loads(raw[8:hdr])
    header["__metadata__"]["format_version"] = "2"
    _write_header(path, header, raw[hdr:])
    with pytest.raises(CheckpointError, match=r"format version '2' is not supported: this "
                                              r"polyten reads version '1'.*upgrade polyten"):
        pt.load(path)


PWNED = []


def _pwn(*args):
    PWNED.append(args)


class _Evil:
    def __reduce__(self):
        return (_pwn, ("unpickled",))


def test_files_that_are_not_checkpoints_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "x.pt"
    for proto in (0, 2, pickle.HIGHEST_PROTOCOL):
        path.write_bytes(pickle.dumps({"w": _Evil()}, protocol=proto))
        with pytest.raises(CheckpointError,
                           match=r"x\.pt'.*this looks like a pickle.*never unpickles"):
            pt.load(path)
        with pytest.raises(CheckpointError, match="this looks like a pickle"):
            pt.load(io.BytesIO(pickle.dumps(_Evil(), protocol=proto)))
    assert PWNED == []
    pickle.loads(pickle.dumps(_Evil()))    # the payload does run when unpickled
    assert PWNED == [("unpickled",)]

    path.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(CheckpointError, match="zip file .*torch.load"):
        pt.load(path)
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match=r"x\.pt': not a polyten checkpoint"):
        pt.load(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="the file has 0 bytes"):
        pt.load(path)
    header = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    _write_header(path, header, b"\x00" * 4)    # a plain safetensors file
    with pytest.raises(CheckpointError, match="safetensors file without polyten's metadata"):
        pt.load(path)
    missing = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        pt.load(missing)


# ------------------------------------------------------------------------------- interop --
def test_files_are_standard_safetensors_readable_by_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 4))
    i = rng.integers(-9, 9, size=(5,), dtype=np.int16)
    z = (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64)
    path = tmp_path / "m.safetensors"
    pt.save({"0.weight": pt.asarray(w).T, "idx": pt.asarray(i), "z": pt.asarray(z),
             "h": pt.asarray(w.astype(np.float16))}, path)
    got = st_torch.load_file(str(path))
    assert set(got) == {"0.weight", "idx", "z", "h"}
    assert torch.equal(got["0.weight"], torch.from_numpy(w).T.contiguous())
    assert torch.equal(got["idx"], torch.from_numpy(i))
    assert torch.equal(torch.view_as_complex(got["z"]), torch.from_numpy(z))
    assert torch.equal(got["h"], torch.from_numpy(w.astype(np.float16)))
