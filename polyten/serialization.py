"""Safe checkpoints: :func:`save` and :func:`load` (``torch.save`` / ``torch.load``).

A checkpoint is one `safetensors <https://github.com/huggingface/safetensors>`_ file: an
8-byte little-endian header length, a JSON header, then the raw tensor bytes.  The object's
structure (nested dicts, lists, tuples, numbers, strings) is plain JSON stored in the header's
``__metadata__``.  Loading parses JSON and copies bytes into arrays: nothing in the file can
run code, unlike a pickle.

Metadata keys (all strings, as safetensors requires):

``format`` / ``format_version``
    ``"polyten.checkpoint"`` / ``"1"``; other versions are refused with a clear message.
``structure``
    The object as tagged JSON: lists are JSON arrays, ``str``/``int``/``bool``/``None`` and
    finite floats are JSON scalars, and every JSON object has exactly one key naming its kind:
    ``{"dict": [[key, value], ...]}`` (keys ``str`` or ``int``, order kept), ``{"odict": ...}``
    (``OrderedDict``), ``{"tuple": [...]}``, ``{"tensor": name}``, ``{"float": "nan"}`` (non-finite
    floats), ``{"dtype": "float32"}``, ``{"size": [2, 3]}``.
``tensors``
    JSON ``{name: {"dtype", "device", "sha256"}}``: the polyten dtype (complex tensors are stored
    as a float view with a trailing dimension of 2, which safetensors can hold), the device the
    tensor was saved from (for ``map_location``) and the SHA-256 of its bytes.
``sha256``
    SHA-256 of the structure, the tensor table and every tensor's header entry, so an edited
    header is detected as surely as an edited tensor.

Tensors are named by their path in the object (``"0.weight"``, ``"state.0.exp_avg"``), so a
saved ``state_dict`` reads directly with ``safetensors.torch.load_file`` and other tools.

Writes are atomic: the file is written under a temporary name in the same directory, flushed,
fsynced and renamed over the target with ``os.replace``; on any error the temporary file is
removed and an existing checkpoint is left untouched.

NumPy is imported inside these functions only (``import polyten`` imports no array library);
tensors reach the host through the public transfer contract (``Tensor.numpy``), so every
backend can be saved from and loaded onto.
"""

from __future__ import annotations

import os

# json, struct, hashlib and NumPy are imported inside the functions: ``import polyten`` (which
# imports this module for ``polyten.save``/``polyten.load``) stays free of them

__all__ = ["save", "load", "CheckpointError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "polyten.checkpoint"
FORMAT_VERSION = "1"

# polyten dtype -> (safetensors dtype, NumPy storage dtype name, is complex)
_STORAGE = {
    "bool": ("BOOL", "bool", False),
    "uint8": ("U8", "uint8", False),
    "int8": ("I8", "int8", False),
    "int16": ("I16", "int16", False),
    "int32": ("I32", "int32", False),
    "int64": ("I64", "int64", False),
    "float16": ("F16", "float16", False),
    "bfloat16": ("BF16", "bfloat16", False),  # NumPy's through ml_dtypes
    "float32": ("F32", "float32", False),
    "float64": ("F64", "float64", False),
    "complex64": ("F32", "float32", True),
    "complex128": ("F64", "float64", True),
}
_ALLOWED = "checkpoints hold tensors, numbers, strings, lists, tuples and dicts"
# the reference safetensors reader refuses larger headers; so do we, before allocating
_MAX_HEADER = 100_000_000
_READ_CHUNK = 1 << 24


class CheckpointError(ValueError):
    """A file is not a polyten checkpoint, or is truncated, corrupted or tampered with."""


# ------------------------------------------------------------------------------- saving ----
def _np_dtype(name: str):
    """The NumPy dtype ``name``; ``bfloat16`` is ml_dtypes' (registered on its import)."""
    import numpy as np
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise CheckpointError("the checkpoint holds bfloat16 tensors, which need ml_dtypes "
                                  "on the host: pip install ml_dtypes") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _describe_type(x) -> str:
    import types
    if isinstance(x, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return "a function"
    if isinstance(x, type):
        return f"a class ({x.__qualname__})"
    t = type(x)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    hint = ""
    if t.__module__.split(".")[0] == "numpy":
        hint = " (convert NumPy values with polyten.from_numpy(...) or .item() first)"
    elif hasattr(x, "state_dict") and callable(x.state_dict):
        hint = " (save its .state_dict() instead)"
    return f"a {name}{hint}"


def _path_str(path) -> str:
    return "obj" + "".join(f"[{k!r}]" for k in path)


class _Flattener:
    """Turns an object into tagged JSON and a list of tensors, refusing anything else."""

    def __init__(self):
        from .api.tensor import Size, Tensor
        from .api.dtypes import dtype
        self.Tensor, self.Size, self.dtype = Tensor, Size, dtype
        self.tensors = []        # (name, tensor)
        self.names = {}          # id(tensor) -> name (one entry per tensor object)
        self.taken = set()
        self.active = set()      # ids of the containers on the current path (cycle check)

    def _name(self, path) -> str:
        base = ".".join(str(k) for k in path) or "tensor"
        name, i = base, 1
        while name in self.taken or name == "__metadata__":
            name, i = f"{base}~{i}", i + 1
        self.taken.add(name)
        return name

    def node(self, x, path):
        import math
        if x is None or x is True or x is False or type(x) is str:
            return x
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            v = float(x)
            return v if math.isfinite(v) else {"float": repr(v)}
        if isinstance(x, self.Tensor):
            from .nn.parameter import UninitializedParameter, is_lazy
            if is_lazy(x):  # a lazy module's: no values yet, kept uninitialised (as PyTorch)
                kind = "parameter" if isinstance(x, UninitializedParameter) else "buffer"
                return {"uninitialized": [kind, x.dtype.name, bool(x.requires_grad)]}
            name = self.names.get(id(x))
            if name is None:
                name = self.names[id(x)] = self._name(path)
                self.tensors.append((name, x))
            return {"tensor": name}
        if isinstance(x, self.dtype):
            return {"dtype": x.name}
        if isinstance(x, str):
            return str(x)
        if isinstance(x, (dict, list, tuple)):
            if id(x) in self.active:
                raise ValueError(f"save: {_path_str(path)} contains itself; checkpoints hold "
                                 f"trees, not cycles")
            self.active.add(id(x))
            try:
                return self._container(x, path)
            finally:
                self.active.discard(id(x))
        raise TypeError(f"save: {_path_str(path)} is {_describe_type(x)}; {_ALLOWED}")

    def _container(self, x, path):
        from collections import OrderedDict
        if isinstance(x, dict):
            items = []
            for k, v in x.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(f"save: {_path_str(path)} has the key {k!r} of type "
                                    f"{type(k).__name__}; checkpoint dict keys must be str "
                                    f"or int")
                k = str(k) if isinstance(k, str) else int(k)
                items.append([k, self.node(v, path + (k,))])
            return {"odict" if isinstance(x, OrderedDict) else "dict": items}
        if type(x) is self.Size:
            return {"size": [int(s) for s in x]}
        if type(x) in (list, tuple):
            out = [self.node(v, path + (i,)) for i, v in enumerate(x)]
            return out if type(x) is list else {"tuple": out}
        raise TypeError(f"save: {_path_str(path)} is {_describe_type(x)}; {_ALLOWED} "
                        f"(subclasses of list and tuple such as namedtuples are not kept: "
                        f"convert to a plain list, tuple or dict)")


def _host_array(t):
    """``t``'s values as a C-contiguous little-endian NumPy array of its storage dtype
    (complex as a float view with a trailing dimension of 2)."""
    import numpy as np
    arr = t.detach().numpy()
    _, np_name, cplx = _STORAGE[t.dtype.name]
    arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")  # keeps 0-d
    if cplx:
        arr = arr.reshape(-1).view(np.dtype(np_name).newbyteorder("<"))
        arr = arr.reshape(tuple(t.shape) + (2,))
    return arr


def _digest(structure: str, table: str, entries: dict) -> str:
    import hashlib
    import json
    canon = json.dumps([structure, table, entries], sort_keys=True, separators=(",", ":"),
                       ensure_ascii=True)
    return hashlib.sha256(canon.encode("ascii")).hexdigest()


def _entries_for_digest(header: dict) -> dict:
    return {k: [v.get("dtype"), v.get("shape"), v.get("data_offsets")]
            for k, v in header.items() if k != "__metadata__"}


def _build(obj):
    """Validate and flatten ``obj``: returns (header bytes, arrays in file order)."""
    import hashlib
    import json
    flat = _Flattener()
    structure = json.dumps(flat.node(obj, ()), separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    arrays, table = [], {}
    for name, t in flat.tensors:
        arr = _host_array(t)
        table[name] = {"dtype": t.dtype.name, "device": str(t.device),
                       "sha256": hashlib.sha256(arr.reshape(-1).view("uint8")).hexdigest()}
        arrays.append((name, arr))
    # largest items first: with the 8-byte aligned header every tensor is aligned to its
    # item size in the file (as the reference writer lays tensors out)
    arrays.sort(key=lambda na: -na[1].dtype.itemsize)
    header, offset = {}, 0
    for name, arr in arrays:
        header[name] = {"dtype": _STORAGE[table[name]["dtype"]][0], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    table_s = json.dumps(table, separators=(",", ":"), ensure_ascii=False)
    header["__metadata__"] = {"format": FORMAT, "format_version": FORMAT_VERSION,
                              "structure": structure, "tensors": table_s,
                              "sha256": _digest(structure, table_s, _entries_for_digest(header))}
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-(8 + len(raw)) % 8)
    if len(raw) > _MAX_HEADER:
        raise ValueError(f"save: the object's structure takes {len(raw)} bytes of JSON, more "
                         f"than the {_MAX_HEADER} a checkpoint header may hold; store long "
                         f"lists of numbers as tensors")
    return raw, [a for _, a in arrays]


def _write_array(fh, arr) -> None:
    if arr.nbytes:
        fh.write(memoryview(arr.reshape(-1).view("uint8")))


def _write(fh, header: bytes, arrays) -> None:
    import struct
    fh.write(struct.pack("<Q", len(header)))
    fh.write(header)
    for arr in arrays:
        _write_array(fh, arr)


def _temp_file(target: str):
    """Create ``.<name>.<random>.tmp`` next to ``target`` (mode from the umask, as open())."""
    import secrets
    d, base = os.path.split(target)
    for _ in range(100):
        tmp = os.path.join(d, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                                getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"save: could not create a temporary file next to {target!r}")


def _fsync_dir(d: str) -> None:
    """Make the rename durable (POSIX); Windows cannot open directories and needs no fsync."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(obj, f) -> None:
    """Save ``obj`` to a checkpoint file (``torch.save``), in a format that cannot run code
    when loaded.

    Parameters
    ----------
    obj : tensor, number, str, bool, None, dtype, Size, or nested dicts (``str``/``int`` keys),
        lists and tuples of these -- e.g. ``{"model": model.state_dict(),
        "optim": opt.state_dict(), "epoch": 3}``.  Tensors are saved detached, as contiguous
        copies of their values (views and non-contiguous tensors included); a tensor object
        that appears several times is stored once and loads as one tensor.
    f : str, os.PathLike or a writable binary file object (``io.BytesIO``)
        A path is written atomically: a crash or error mid-save leaves the previous file
        intact and no temporary file behind.  A symlink is written through.  A file object
        is written at its current position, in place.

    Raises
    ------
    TypeError
        ``obj`` holds something else (a function, a module, a set, a NumPy array...); the
        message names where, e.g. ``obj['model']['fn']``.
    ValueError
        ``obj`` contains itself.

    Notes
    -----
    The file is a `safetensors` file (the structure is JSON in its ``__metadata__``) carrying
    SHA-256 checksums; see :mod:`polyten.serialization`.
    """
    header, arrays = _build(obj)  # every check runs before the file system is touched
    if hasattr(f, "write") and not isinstance(f, (str, bytes, os.PathLike)):
        _write(f, header, arrays)
        if hasattr(f, "flush"):
            f.flush()
        return
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"save: f must be a path or a writable binary file object, got "
                        f"{type(f).__name__}")
    target = os.path.realpath(os.fspath(f))
    d = os.path.dirname(target)
    if not os.path.isdir(d):
        raise FileNotFoundError(2, f"save: the directory {d!r} does not exist", os.fspath(f))
    tmp, fd = _temp_file(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(fh, header, arrays)
            fh.flush()
            os.fsync(fh.fileno())
        try:  # overwriting keeps the old file's permissions, as writing in place would
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(d)


# ------------------------------------------------------------------------------ loading ----
class _Reader:
    """Reads a checkpoint from a binary stream, wording every failure as a CheckpointError."""

    def __init__(self, fh, name: str, size):
        self.fh, self.name, self.size = fh, name, size
        self.data_size = None
        self.json_ok = False

    def fail(self, what: str):
        return CheckpointError(f"load: {self.name}: {what}")

    def read_exact(self, n: int, what: str) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise self.fail(f"the file is truncated: it ends inside the {what} ({len(data)} of "
                            f"{n} bytes present)")
        return data

    def read_into(self, arr, what: str) -> None:
        if not arr.nbytes:
            return
        mv = memoryview(arr.reshape(-1).view("uint8"))
        pos, n = 0, len(mv)
        readinto = getattr(self.fh, "readinto", None)
        while pos < n:
            if readinto is not None:
                got = readinto(mv[pos:pos + _READ_CHUNK])
            else:
                chunk = self.fh.read(min(_READ_CHUNK, n - pos))
                got = len(chunk)
                mv[pos:pos + got] = chunk
            if not got:
                raise self.fail(f"the file is truncated: it ends inside {what} ({pos} of {n} "
                                f"bytes present)")
            pos += got

    def header(self):
        head = self.fh.read(8)
        try:
            return self._header(head)
        except CheckpointError:
            if self.json_ok:
                raise
            # only once no JSON header could be read: a valid header length can start with
            # the same bytes as a pickle.  Protocol 2+ pickles start with PROTO (0x80), 0
            # and 1 with MARK, GLOBAL, an empty dict or an empty list
            if head[:1] and head[:1] in b"\x80(c}]":
                raise self.fail("this looks like a pickle (e.g. written by pickle.dump or "
                                "an old torch.save), not a polyten checkpoint; polyten never "
                                "unpickles files, because a pickle can run code when "
                                "loaded") from None
            if head[:4] == b"PK\x03\x04":
                raise self.fail("this is a zip file (e.g. written by torch.save), not a "
                                "polyten checkpoint; load it with torch.load(..., "
                                "weights_only=True) and convert the tensors with "
                                "polyten.asarray") from None
            raise

    def _header(self, head: bytes):
        import json
        import struct
        if len(head) < 8:
            raise self.fail(f"not a polyten checkpoint: the file has {len(head)} bytes, fewer "
                            f"than the 8-byte header length a checkpoint starts with")
        (n,) = struct.unpack("<Q", head)
        avail = None if self.size is None else self.size - 8
        if n > _MAX_HEADER:
            raise self.fail(f"not a polyten checkpoint: it declares a {n}-byte header "
                            f"(headers are at most {_MAX_HEADER} bytes)")
        if avail is not None and n > avail:
            raise self.fail(f"not a polyten checkpoint, or truncated: it declares a {n}-byte "
                            f"header but only {avail} bytes follow")
        raw = self.read_exact(n, "header")
        self.data_size = None if avail is None else avail - n
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise self.fail(f"not a polyten checkpoint, or its header is corrupted: the "
                            f"header is not valid JSON ({e})") from None
        if not isinstance(header, dict):
            raise self.fail("not a polyten checkpoint: the header is not a JSON object")
        self.json_ok = True
        meta = header.pop("__metadata__", None)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise self.fail(f"a safetensors file without polyten's metadata (format "
                            f"{FORMAT!r}), not a polyten checkpoint; read plain safetensors "
                            f"files with safetensors.numpy.load_file")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise self.fail(f"checkpoint format version {version!r} is not supported: this "
                            f"polyten reads version {FORMAT_VERSION!r}; a newer polyten "
                            f"wrote this file, so upgrade polyten to load it")
        for key in ("structure", "tensors", "sha256"):
            if not isinstance(meta.get(key), str):
                raise self.fail(f"the header is corrupted: metadata {key!r} is missing")
        if _digest(meta["structure"], meta["tensors"],
                   _entries_for_digest(header)) != meta["sha256"]:
            raise self.fail("the header was modified after saving (its SHA-256 does not "
                            "match); the file is corrupted or was tampered with")
        try:
            structure = json.loads(meta["structure"])
            table = json.loads(meta["tensors"])
        except (ValueError, RecursionError) as e:
            raise self.fail(f"the header is corrupted: {e}") from None
        if not isinstance(table, dict) or set(table) != set(header):
            raise self.fail("the header is corrupted: the tensor table does not match the "
                            "tensors in the file")
        return header, table, structure

    def tensors(self, header: dict, table: dict):
        """Read every tensor's bytes (in file order) into its own NumPy array and check it."""
        import hashlib
        import numpy as np
        order = []
        for name, e in header.items():
            info = table[name]
            if not (isinstance(e, dict) and isinstance(info, dict)
                    and info.get("dtype") in _STORAGE and isinstance(e.get("shape"), list)
                    and all(type(s) is int and s >= 0 for s in e["shape"])
                    and isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2
                    and all(type(o) is int for o in e["data_offsets"])):
                raise self.fail(f"the header entry of tensor {name!r} is malformed")
            st, np_name, cplx = _STORAGE[info["dtype"]]
            shape = tuple(e["shape"])
            if e["dtype"] != st or (cplx and shape[-1:] != (2,)):
                raise self.fail(f"tensor {name!r}: stored as {e['dtype']} {list(shape)}, "
                                f"which cannot hold a {info['dtype']} tensor")
            begin, end = e["data_offsets"]
            count = 1
            for s in shape:
                count *= s
            if end - begin != count * _np_dtype(np_name).itemsize:
                raise self.fail(f"tensor {name!r}: its byte range [{begin}, {end}) does not "
                                f"match its shape {list(shape)} and dtype {e['dtype']}")
            order.append((begin, end, name, shape, np_name, cplx, info))
        order.sort(key=lambda o: o[:2])
        data_size = self.data_size
        need = order[-1][1] if order else 0
        if data_size is not None and data_size < need:
            raise self.fail(f"the file is truncated: its tensors need {need} bytes of data but "
                            f"only {data_size} are present")
        pos, out = 0, {}
        for begin, end, name, shape, np_name, cplx, info in order:
            if begin != pos:
                raise self.fail(f"tensor {name!r}: its bytes start at {begin}, expected {pos} "
                                f"(tensor byte ranges overlap or leave a gap)")
            arr = np.empty(shape, dtype=_np_dtype(np_name).newbyteorder("<"))
            self.read_into(arr, f"tensor {name!r}")
            if hashlib.sha256(arr.reshape(-1).view("uint8")).hexdigest() != info.get("sha256"):
                raise self.fail(f"tensor {name!r} is corrupted: its SHA-256 does not match the "
                                f"checksum recorded when it was saved")
            arr = arr.astype(np_name, copy=False)  # native byte order
            if cplx:
                arr = arr.view("complex64" if np_name == "float32" else "complex128")
                arr = arr.reshape(shape[:-1])
            out[name] = (arr, info["dtype"], info.get("device"))
            pos = end
        if self.fh.read(1):
            raise self.fail(f"unexpected bytes after the last tensor (the data should end at "
                            f"byte {pos}); the file is corrupted or was tampered with")
        return out


def _map_locations(map_location, fname: str):
    """A function (host array, dtype, saved device) -> Tensor implementing ``map_location``."""
    from .api.creation import asarray, from_numpy
    from .api.dtypes import DTYPES
    from .api.tensor import Tensor
    from .dispatch.device import Device, device as to_device
    from .dispatch.errors import BackendError

    resolved = {}

    def resolve(target, saved):
        key = str(target) if isinstance(target, Device) else target
        dev = resolved.get(key)
        if dev is None:
            try:
                dev = resolved[key] = to_device(target)
            except BackendError as e:
                how = ("it was saved from that device" if key == saved else
                       f"map_location sends the tensors saved from {saved!r} there")
                raise type(e)(f"load: {fname}: cannot place tensors on {key!r} ({how}): {e}\n"
                              f"Pass map_location='cpu' (or another available device) to "
                              f"load them elsewhere.") from None
            except TypeError:
                raise TypeError(f"load: map_location must be None, a device (string or "
                                f"polyten.device), a dict {{saved device: device}} or a "
                                f"callable, got {type(map_location).__name__} "
                                f"{map_location!r}") from None
        return dev

    if isinstance(map_location, dict):
        table = {str(k): v for k, v in map_location.items()}
    elif map_location is not None and not callable(map_location) and \
            not isinstance(map_location, (str, Device)):
        resolve(map_location, "")  # raises the TypeError above

    def place(arr, dtype_name, saved):
        saved = saved or "cpu"
        if map_location is None:
            target = saved
        elif isinstance(map_location, (str, Device)):
            target = map_location
        elif isinstance(map_location, dict):
            # exact location first ("cuda:1"), then its backend ("cuda" maps every cuda:N)
            target = table.get(saved, table.get(saved.split(":")[0], saved))
        else:
            result = map_location(from_numpy(arr), saved)
            if isinstance(result, Tensor):
                return result.detach()
            if result is not None and not isinstance(result, (str, Device)):
                raise TypeError(f"load: the map_location callable returned "
                                f"{type(result).__name__}; return a tensor, a device, or "
                                f"None (keep the saved device)")
            target = saved if result is None else result
        return asarray(arr, dtype=DTYPES[dtype_name], device=resolve(target, saved))
    return place


def _rebuild(node, tensors, fail):
    """Tagged JSON -> Python objects (tensors looked up by name)."""
    from collections import OrderedDict
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_rebuild(v, tensors, fail) for v in node]
    if not (isinstance(node, dict) and len(node) == 1):
        raise fail(f"the structure holds an unknown entry {str(node)[:60]}")
    (tag, v), = node.items()
    if tag in ("dict", "odict") and isinstance(v, list):
        out = OrderedDict() if tag == "odict" else {}
        for item in v:
            if not (isinstance(item, list) and len(item) == 2 and
                    isinstance(item[0], (str, int)) and not isinstance(item[0], bool)):
                raise fail("the structure holds a malformed dict entry")
            out[item[0]] = _rebuild(item[1], tensors, fail)
        return out
    if tag == "tuple" and isinstance(v, list):
        return tuple(_rebuild(x, tensors, fail) for x in v)
    if tag == "tensor" and isinstance(v, str):
        if v not in tensors:
            raise fail(f"the structure refers to a tensor {v!r} that the file does not hold")
        return tensors[v]
    if tag == "float" and v in ("nan", "inf", "-inf"):
        return float(v)
    if tag == "dtype" and isinstance(v, str):
        from .api.dtypes import DTYPES
        if v in DTYPES:
            return DTYPES[v]
    if (tag == "uninitialized" and isinstance(v, list) and len(v) == 3
            and v[0] in ("parameter", "buffer") and isinstance(v[2], bool)):
        from .api.dtypes import DTYPES
        from .nn.parameter import UninitializedBuffer, UninitializedParameter
        if v[1] in DTYPES:
            cls = UninitializedParameter if v[0] == "parameter" else UninitializedBuffer
            return cls(v[2], dtype=DTYPES[v[1]])
    if tag == "size" and isinstance(v, list) and all(type(s) is int for s in v):
        from .api.tensor import Size
        return Size(v)
    raise fail(f"the structure holds an unknown entry {str(node)[:60]}")


def load(f, map_location=None, *, weights_only: bool = True):
    """Load an object saved by :func:`save` (``torch.load``).  Never runs code from the file.

    Parameters
    ----------
    f : str, os.PathLike or a readable binary file object (``io.BytesIO``)
    map_location : optional
        Where tensors go, as ``torch.load``: ``None`` -- the device each was saved from (an
        error suggesting ``map_location="cpu"`` if that backend is not available here); a
        device string or :class:`polyten.device` -- all tensors there (any backend: a
        checkpoint saved on one backend loads on another); a dict ``{saved device: device}``
        (keys are devices such as ``"cuda:1"`` or a backend name such as ``"cuda"`` for all
        its devices; unlisted devices stay as saved); or a callable
        ``fn(tensor_on_cpu, saved_device)`` returning a tensor, a device, or ``None`` for the
        saved device.
    weights_only : bool
        Accepted for ``torch.load`` compatibility; polyten checkpoints never contain code, so
        only ``True`` is meaningful.

    Returns
    -------
    The saved object: tensors come back as plain tensors (``requires_grad=False``, parameters
    included, as ``load_state_dict`` expects), dict keys, tuples and ``OrderedDict`` kept.

    Raises
    ------
    FileNotFoundError
        ``f`` does not exist.
    CheckpointError
        (a ``ValueError``) the file is not a polyten checkpoint (a pickle, a zip, random
        bytes), is truncated, or a checksum shows it was corrupted or tampered with.
    """
    if weights_only is not True:
        raise ValueError("load: polyten checkpoints hold only data and never unpickle, so "
                         "weights_only=False has nothing to enable; omit it")
    if hasattr(f, "read") and not isinstance(f, (str, bytes, os.PathLike)):
        name = getattr(f, "name", None)
        name = repr(name) if isinstance(name, str) else f"<{type(f).__name__}>"
        size = None
        if hasattr(f, "seek") and hasattr(f, "tell"):
            try:
                here = f.tell()
                size = f.seek(0, os.SEEK_END) - here
                f.seek(here)
            except (OSError, ValueError):
                size = None
        return _load(f, name, size, map_location)
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"load: f must be a path or a readable binary file object, got "
                        f"{type(f).__name__}")
    with open(f, "rb") as fh:
        return _load(fh, repr(os.fspath(f)), os.fstat(fh.fileno()).st_size, map_location)


def _load(fh, name: str, size, map_location):
    reader = _Reader(fh, name, size)
    header, table, structure = reader.header()
    place = _map_locations(map_location, name)
    tensors = {k: place(arr, dt, dev) for k, (arr, dt, dev) in
               reader.tensors(header, table).items()}
    try:
        return _rebuild(structure, tensors, reader.fail)
    except RecursionError:
        raise reader.fail("the structure is nested too deeply to rebuild") from None
