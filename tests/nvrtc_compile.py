"""Compile, with the real CuPy and NVRTC, every kernel that polyten's cuda backend made CuPy
build: no GPU needed.

Input: the JSON lines that the CuPy stand-in writes with ``POLYTEN_STANDIN_KERNEL_LOG=<path>``
(``tests/cupy_standin.py``), one per distinct kernel: an ``ElementwiseKernel`` or
``ReductionKernel`` with the dtypes, dims and scalars of one call, or a ``RawKernel`` source.

For each line this script asks the installed CuPy for the very source it would generate on a
GPU (its own code generators, ``cupy._core._kernel._get_elementwise_kernel_code`` and
``cupy._core._reduction._ReductionKernel_get_cached_function_code``, with CuPy's headers
prepended as ``compile_with_cache`` prepends them), takes CuPy's own compiler options
(``assemble_cupy_compiler_options``, plus ``-ftz=true`` and the architecture that
``_compile_with_cache_cuda`` adds), and compiles it with NVRTC for the given architectures.
Only loading the binary needs a GPU; it is skipped.

Run (under a Python with ``cupy-cuda13x``, ``nvidia-cuda-nvrtc`` and ``nvidia-cuda-runtime``
installed; ``scripts/test.sh`` makes one in ``.venv-nvrtc``)::

    python tests/nvrtc_compile.py kernels.jsonl [--arch 90 --arch 80] [--jobs 2] [--cache DIR]

With ``--cache``, each successful compilation leaves a file in DIR (its warnings) named by a
hash of what decides NVRTC's output: the source, the options, the architecture, NVRTC's
version and those of the packages whose headers the source includes (CuPy, the CUDA
runtime).  A later run skips a compilation whose file is there: NVRTC compiles the same input
the same way.  A failure is never cached; it is compiled, and reported, on every run.

Prints one line per failure (kernel, dtypes, architecture, NVRTC's log) and a summary; exits 1
if any kernel fails to compile.  Uses CuPy internals that exist in CuPy 14 (checked at start:
a clear error names what is missing).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import io
import json
import os
import sys
import types


def _cupy():
    """CuPy's code generators and compiler, patched to compile for an explicit architecture
    without asking a device which one it is."""
    try:
        import numpy as np
        import cupy
        from cupy._core import _kernel, _reduction, core
        from cupy._core._carray import Indexer
        from cupy._core._scalar import CScalar
        from cupy.cuda import compiler
    except ImportError as e:
        sys.exit(f"nvrtc_compile: needs CuPy 14 with NVRTC (pip install cupy-cuda13x "
                 f"nvidia-cuda-nvrtc nvidia-cuda-runtime): {e}")
    needed = {"_kernel._get_elementwise_kernel_code": _kernel, "_kernel._TypeMap": _kernel,
              "_kernel._ArgInfo": _kernel, "_kernel._get_param_info": _kernel,
              "_kernel._decide_params_type": _kernel,
              "_reduction._ReductionKernel_get_cached_function_code": _reduction,
              "core.assemble_cupy_compiler_options": core, "core._cupy_header_list": core,
              "compiler.compile_using_nvrtc": compiler}
    missing = [n for n, m in needed.items() if not hasattr(m, n.split(".")[1])]
    if missing:
        sys.exit(f"nvrtc_compile: CuPy {cupy.__version__} lacks {missing}: this script follows "
                 "CuPy 14's internals")
    # memoized per device in CuPy (it asks the device): compile for the architecture given
    compiler._get_arch_for_options_for_nvrtc = lambda arch=None: (f"-arch=sm_{arch}", "cubin")
    return types.SimpleNamespace(np=np, cupy=cupy, K=_kernel, R=_reduction, core=core,
                                 compiler=compiler, Indexer=Indexer, CScalar=CScalar)


def _dtype(np, name):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16).type
    return np.dtype(name).type


# CuPy's _ArgKind (cupy/_core/_kernel.pxd)
_NDARRAY, _INDEXER, _SCALAR = 1, 2, 3


def _arginfos(mods, infos, indexers):
    np, K = mods.np, mods.K
    out = []
    for info in infos:
        if info[0] == "nd":
            out.append(K._ArgInfo(_NDARRAY, mods.cupy.ndarray, _dtype(np, info[1]), info[2],
                                  info[3], True))
        else:
            out.append(K._ArgInfo(_SCALAR, mods.CScalar, _dtype(np, info[1]), 0, True, True))
    out += [K._ArgInfo(_INDEXER, mods.Indexer, None, n, True, True) for n in indexers]
    return out


def _type_map(mods, in_params, out_params, infos):
    """``_decide_params_type``'s type map (it also checks the dtypes as CuPy does at a call)."""
    np, K = mods.np, mods.K
    n_in = len(in_params)
    arr = [_dtype(np, i[1]) if i[0] == "nd" else None for i in infos]
    return K._decide_params_type(in_params, out_params, tuple(arr[:n_in]), tuple(arr[n_in:]))[2]


def generate(mods, e):
    """``(source, options)`` that CuPy compiles for the log entry ``e``."""
    np, K, core = mods.np, mods.K, mods.core
    header = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    options = core.assemble_cupy_compiler_options(tuple(e.get("options", ()))) + ("-ftz=true",)
    if e["kind"] == "raw":
        return e["code"], options
    ins = K._get_param_info(e["in_params"], True)
    outs = K._get_param_info(e["out_params"], False)
    if e["kind"] == "elementwise":
        params = ins + outs + K._get_param_info("CIndexer _ind", False)
        code = K._get_elementwise_kernel_code(
            tuple(_arginfos(mods, e["args"], [e["indexer"]])),
            _type_map(mods, ins, outs, e["args"]), params, e["operation"], e["name"],
            e["preamble"], e["loop_prep"], e["after_loop"])
        return header + code, options
    assert e["kind"] == "reduction", e["kind"]
    params = (ins + outs + K._get_param_info("CIndexer _in_ind, CIndexer _out_ind", False)
              + K._get_param_info("int32 _block_stride", True))
    # the reduction adds its index type to the call's (int32 below 2**31 elements per output)
    type_map = K._TypeMap(_type_map(mods, ins, outs, e["args"])._pairs
                          + (("IndexT", np.int32),))
    reduce_type = e["reduce_type"] or outs[0].ctype
    arginfos = _arginfos(mods, e["args"], e["indexers"]) + [
        K._ArgInfo(_SCALAR, mods.CScalar, np.int32, 0, True, True)]
    code = mods.R._ReductionKernel_get_cached_function_code(
        len(ins), len(outs), params, tuple(arginfos), type_map, e["name"], 512, reduce_type,
        "" if e["identity"] is None else str(e["identity"]), e["map_expr"], e["reduce_expr"],
        e["post_map_expr"], e["preamble"], tuple(e.get("options", ())))
    return header + code, options


def _describe(e) -> str:
    if e["kind"] == "raw":
        return f"RawKernel {e['name']}"
    dts = ",".join(i[1] for i in e["args"])
    return f"{'ElementwiseKernel' if e['kind'] == 'elementwise' else 'ReductionKernel'} " \
           f"{e['name']} ({dts})"


_MODS = None


def _compile_one(job):
    """``(description, arch, error or None, warnings)``: one NVRTC compilation."""
    global _MODS
    if _MODS is None:
        _MODS = _cupy()
    desc, source, options, arch = job
    compiler = _MODS.compiler
    log = io.StringIO()
    try:
        compiler.compile_using_nvrtc(source, options, arch=arch, log_stream=log)
    except compiler.CompileException as err:
        return desc, arch, str(err), ""
    return desc, arch, None, log.getvalue().strip()


def _cache_key(source: str, options, arch: str, compiler_id: str) -> str:
    h = hashlib.sha256()
    for part in (compiler_id, arch, *options, source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _compiler_id(nvrtc: str) -> str:
    """NVRTC's version and the packages whose headers a kernel includes (CuPy's, CUDA's)."""
    from importlib import metadata
    versions = []
    for dist in ("cupy-cuda13x", "nvidia-cuda-nvrtc", "nvidia-cuda-runtime"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} absent")
    return f"NVRTC {nvrtc}; " + "; ".join(versions)


def _cache_put(path: str, warnings: str) -> None:
    """Write atomically: another run may read the folder at the same time."""
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(warnings)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="+", help="JSON-lines kernel logs of the CuPy stand-in")
    ap.add_argument("--arch", action="append", help="compute capability, e.g. 90 (H100/H200) "
                    "or 80 (A100); repeatable (default: 90)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dump", help="folder to write each failing source into")
    ap.add_argument("--cache", help="folder of earlier successful compilations, skipped")
    args = ap.parse_args(argv)
    archs = args.arch or ["90"]
    mods = _cupy()

    entries, seen = [], set()
    for path in args.logs:
        with open(path) as f:
            for line in f:
                if line.strip() and line not in seen:
                    seen.add(line)
                    entries.append(json.loads(line))
    kinds = collections.Counter(e["kind"] for e in entries)
    jobs, sources = [], {}
    for e in entries:
        try:
            source, options = generate(mods, e)
        except Exception as err:  # CuPy itself refuses the call (a dtype or parameter error)
            print(f"FAIL {_describe(e)}: CuPy refuses to generate it: "
                  f"{type(err).__name__}: {err}")
            sources[("refused", _describe(e))] = None
            continue
        key = (source, options)
        if key in sources:
            continue
        sources[key] = _describe(e)
        jobs += [(_describe(e), source, options, a) for a in archs]

    failures = [k for k, v in sources.items() if v is None]
    warned = 0
    nvrtc = ".".join(map(str, mods.compiler._get_nvrtc_version()))
    compiler_id = _compiler_id(nvrtc)
    cache_files = {}  # job index -> its file in the cache
    results, to_compile = [], []
    for i, job in enumerate(jobs):
        if args.cache:
            cache_files[i] = os.path.join(args.cache, _cache_key(job[1], job[2], job[3],
                                                                 compiler_id))
            try:
                with open(cache_files[i]) as f:
                    results.append((job[0], job[3], None, f.read()))
                continue
            except OSError:
                pass
        to_compile.append(i)
    cached = len(results)
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
    with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for i, res in zip(to_compile, pool.map(_compile_one, [jobs[i] for i in to_compile],
                                               chunksize=4)):
            if i in cache_files and res[2] is None:
                _cache_put(cache_files[i], res[3])
            results.append(res)
    for desc, arch, err, warnings in results:
        if err is not None:
            failures.append(desc)
            print(f"FAIL {desc} for sm_{arch}:\n{err[-4000:]}\n")
            if args.dump:
                os.makedirs(args.dump, exist_ok=True)
                src = next(j[1] for j in jobs if j[0] == desc)
                with open(os.path.join(args.dump, f"{len(failures)}.cu"), "w") as f:
                    f.write(src)
        elif warnings:
            warned += 1
            print(f"warning {desc} for sm_{arch}:\n{warnings[-2000:]}\n")
    print(f"nvrtc_compile: {len(entries)} logged kernels ({dict(kinds)}), "
          f"{len(sources)} distinct sources, {len(jobs)} compilations for "
          f"sm_{', sm_'.join(archs)} ({cached} found in the cache) with CuPy "
          f"{mods.cupy.__version__}, NVRTC {nvrtc}: "
          f"{len(failures)} failed, {warned} with warnings")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
