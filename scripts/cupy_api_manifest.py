"""Write CuPy's public API surface to ``tests/data/cupy_api.json``.

The CuPy stand-in of the tests (``tests/cupy_standin.py``) runs the cuda backend's kernels on
NumPy, and refuses what real CuPy would refuse: a name CuPy does not have, a keyword argument
its function or method does not take, a Generator method it lacks.  This script records that
surface from an installed CuPy.  It needs no GPU (CuPy imports without one), so it runs on any
machine:

    python -m venv /tmp/cupyenv && /tmp/cupyenv/bin/pip install numpy cupy-cuda12x
    /tmp/cupyenv/bin/python scripts/cupy_api_manifest.py

Recorded per callable: its parameters as ``[name, kind, has_default]`` (kinds as
``inspect.Parameter``: ``POSITIONAL_ONLY``, ``POSITIONAL_OR_KEYWORD``, ``VAR_POSITIONAL``,
``KEYWORD_ONLY``, ``VAR_KEYWORD``), from ``inspect.signature`` or, for Cython functions, from
the signature on their docstring's first line; ``null`` when neither says.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import sys

MODULES = ("cupy", "cupy.linalg", "cupy.random", "cupy.fft", "cupy.lib.stride_tricks", "cupyx",
           "cupyx.scipy.special")
UFUNC_METHODS = ("reduce", "accumulate", "reduceat", "outer", "at")


def _params_from_doc(obj):
    doc = getattr(obj, "__doc__", None) or ""
    first = doc.strip().split("\n", 1)[0].replace("\\*", "*")
    m = re.match(r"^[\w.]*\((.*)\)(\s*->.*)?$", first)
    if not m:
        return None
    try:
        fn = ast.parse(f"def f({m.group(1)}): pass").body[0]
    except SyntaxError:
        return None
    a = fn.args
    out = []
    pos = a.posonlyargs + a.args
    first_default = len(pos) - len(a.defaults)
    for i, p in enumerate(pos):
        kind = "POSITIONAL_ONLY" if i < len(a.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        out.append([p.arg, kind, i >= first_default])
    if a.vararg:
        out.append([a.vararg.arg, "VAR_POSITIONAL", False])
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append([p.arg, "KEYWORD_ONLY", d is not None])
    if a.kwarg:
        out.append([a.kwarg.arg, "VAR_KEYWORD", False])
    if out and out[0][0] == "self":
        out = out[1:]
    return out


def params_of(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _params_from_doc(obj)
    out = [[p.name, p.kind.name, p.default is not inspect.Parameter.empty]
           for p in sig.parameters.values()]
    if out and out[0][0] == "self":
        out = out[1:]
    return out


def describe(obj):
    import cupy
    if isinstance(obj, cupy.ufunc):
        return {"kind": "ufunc", "nin": obj.nin, "nout": obj.nout, "params": params_of(obj),
                "methods": [m for m in UFUNC_METHODS if hasattr(obj, m)]}
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if inspect.isclass(obj):
        return {"kind": "class"}
    if callable(obj):
        return {"kind": "function", "params": params_of(obj)}
    return {"kind": "value"}


def public(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def main() -> None:
    import cupy
    manifest = {"cupy_version": cupy.__version__, "modules": {}}
    for name in MODULES:
        mod = importlib.import_module(name)
        manifest["modules"][name] = {n: describe(getattr(mod, n)) for n in public(mod)}
    nd = {}
    for n in dir(cupy.ndarray):
        if n.startswith("_") and not (n.startswith("__") and n.endswith("__")):
            continue
        attr = getattr(cupy.ndarray, n)
        if callable(attr) and not isinstance(attr, type):
            nd[n] = {"kind": "method", "params": params_of(attr)}
        else:
            nd[n] = {"kind": "attribute"}
    manifest["ndarray"] = nd
    manifest["Generator"] = {n: {"kind": "method", "params": params_of(getattr(
        cupy.random.Generator, n))} for n in public(cupy.random.Generator)}
    manifest["ufunc_methods"] = {m: params_of(getattr(cupy.add, m)) for m in UFUNC_METHODS}
    manifest["flags"] = public(cupy._core.flags.Flags)
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "cupy_api.json")
    with open(out, "w") as f:
        json.dump(manifest, f, indent=0, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.normpath(out)} (CuPy {cupy.__version__}, "
          f"{sum(len(v) for v in manifest['modules'].values())} names)", file=sys.stderr)


if __name__ == "__main__":
    main()
