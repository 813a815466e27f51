"""Make polyten's cuda backend build its kernels on the CuPy stand-in, so that each is logged
for ``tests/nvrtc_compile.py`` (run with ``POLYTEN_STANDIN_KERNEL_LOG=<path>``).

Parts (``--parts``, comma-separated; all by default):

* ``conformance``: the conformance suite on ``cuda``: every op in float16 / float32 / float64
  and its gradient;
* ``steps``: the training steps of ``benchmarks/bench_cuda.py`` (digits, MLP, CNN, transformer)
  in float32, with float16 autocast and GradScaler, with bfloat16 autocast and with bfloat16
  weights;
* ``paths``: the kernels neither of those reaches, in float16 / bfloat16 / float32 / float64:
  erf and its gradient, layer_norm / batch_norm with affine parameters of another dtype than
  the input's, or strided ones, batch_norm statistics without gradient (``norm.py``'s
  ReductionKernel and ElementwiseKernel path) and its running statistics in the input's
  dtype, and every optimizer with its float16, bfloat16, float64 and GradScaler variants,
  contiguous and not;
* ``sources``: every ``RawKernel`` source generator of the plugin over all its dtypes, modes and
  slot counts (``rows``, ``conv``, ``multi_tensor``), logged without running them;
* ``unreached`` (last): each ``fused_src`` kernel that none of the parts before launched,
  logged for contiguous float16 / float32 / float64 arrays without running it.

Run:  POLYTEN_STANDIN_KERNEL_LOG=kernels.jsonl python tests/nvrtc_workload.py [--parts steps]
      [--skip conformance,unreached]
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

import cupy_standin as cs  # noqa: E402

STEP_CASES = ("digits", "mlp", "cnn", "transformer", "digits_amp", "mlp_amp", "cnn_amp",
              "transformer_amp", "mlp_bf16", "cnn_bf16", "transformer_bf16", "mlp_bf16w",
              "cnn_bf16w", "transformer_bf16w")


def conformance() -> None:
    import polyten_conformance
    rc = polyten_conformance.run("cuda", extra_args=("-q", "-p", "no:cacheprovider"))
    if rc:
        raise SystemExit(f"nvrtc_workload: the conformance suite failed on the stand-in ({rc})")


def steps() -> None:
    import bench_cuda as bc
    bc._torch = lambda: None  # polyten only
    for case in STEP_CASES:
        step = bc._step_pair(case, True)[0]
        step()
        step()


def paths() -> None:
    import polyten as pt
    import polyten.nn.functional as F
    from polyten import optim

    dev = "cuda"

    def strided(*shape, dt):  # a parameter the fused row kernels cannot read as (n,)
        return pt.randn(*shape, 2, device=dev, dtype=dt)[..., 0].detach().requires_grad_()

    for dt in (pt.float16, pt.bfloat16, pt.float32, pt.float64):
        pt.erf(pt.randn(8, device=dev, dtype=dt, requires_grad=True)).sum().backward()
        x = pt.randn(6, 40, device=dev, dtype=dt, requires_grad=True)
        w, b = strided(40, dt=dt), strided(40, dt=dt)
        for wb in ((w, b), (w, None), (None, b)):
            F.layer_norm(x, (40,), *wb).float().sum().backward()
        x4 = pt.randn(4, 3, 5, 5, device=dev, dtype=dt, requires_grad=True)
        w, b = strided(3, dt=dt), strided(3, dt=dt)
        for wb in ((w, b), (w, None), (None, b)):
            F.batch_norm(x4, None, None, *wb, training=True).float().sum().backward()
        with pt.no_grad():  # the statistics alone
            F.batch_norm(x4, None, None, training=True)
            F.batch_norm(x4, pt.zeros(3, device=dev, dtype=dt), pt.ones(3, device=dev, dtype=dt),
                         training=True)

    makers = {
        "sgd": lambda p: optim.SGD(p, lr=0.1),
        "sgd_momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                            weight_decay=0.01),
        "adam": lambda p: optim.Adam(p, lr=1e-3, weight_decay=0.01),
        "adam_amsgrad": lambda p: optim.Adam(p, lr=1e-3, amsgrad=True),
        "adamw": lambda p: optim.AdamW(p, lr=1e-3),
        "adamax": lambda p: optim.Adamax(p, lr=1e-3),
        "nadam": lambda p: optim.NAdam(p, lr=1e-3),
        "radam": lambda p: optim.RAdam(p, lr=1e-3),
        "adagrad": lambda p: optim.Adagrad(p, lr=1e-2),
        "adadelta": lambda p: optim.Adadelta(p),
        "rmsprop": lambda p: optim.RMSprop(p, lr=1e-3),
        "rmsprop_centered": lambda p: optim.RMSprop(p, lr=1e-3, centered=True),
        "rmsprop_momentum": lambda p: optim.RMSprop(p, lr=1e-3, momentum=0.9),
        "rmsprop_centered_momentum": lambda p: optim.RMSprop(p, lr=1e-3, centered=True,
                                                             momentum=0.9),
        "rprop": lambda p: optim.Rprop(p, lr=1e-3),
    }
    for dt in (pt.float16, pt.bfloat16, pt.float32, pt.float64):
        for make in makers.values():
            for n in (1, 3):  # one parameter; several (multi-tensor launches)
                params = [pt.randn(17 + i, device=dev, dtype=dt, requires_grad=True)
                          for i in range(n)]
                params.append(strided(5, dt=dt))  # per-parameter kernels (not contiguous)
                opt = make(params)
                for _ in range(2):
                    opt.zero_grad()
                    sum((p.float() ** 2).sum() for p in params).backward()
                    pt.nn.utils.clip_grad_norm_(params, 1.0)
                    pt.nn.utils.clip_grad_value_(params, 0.5)
                    opt.step()
    for make in makers.values():  # float32 parameters under GradScaler
        params = [pt.randn(33, device=dev, requires_grad=True) for _ in range(3)]
        params.append(strided(5, dt=pt.float32))
        opt = make(params)
        scaler = pt.amp.GradScaler("cuda")
        for _ in range(2):
            opt.zero_grad()
            scaler.scale(sum((p ** 2).sum() for p in params)).backward()
            scaler.unscale_(opt)
            pt.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(opt)
            scaler.update()


def sources() -> None:
    from polyten_cuda import conv, deterministic, fused_src, index_check, multi_tensor, rows
    dtypes = tuple(multi_tensor.C_TYPES)  # every storage dtype the generators take

    def log(name, code):
        cs._log_kernel({"kind": "raw", "name": name, "code": code, "options": []})

    for op in rows.KERNELS:
        for dtype in dtypes:
            for mode in ("warp", "block"):
                log(*rows.source(op, dtype, mode))
    for dtype in dtypes:
        log(*rows.param_grads_source(dtype))
        log(*rows.column_sum_source(dtype))
        log(*rows.column_finish_source(dtype))
    for which in ("im2col", "col2im", "from_grid", "to_grid"):
        for dtype in dtypes:
            for index in ("int64", "int32"):
                log(*conv.source(dtype, which, index))
    for dtype in dtypes:
        log(*deterministic.source(dtype))
    for dtype in ("int64", "int32"):
        log(*index_check.source(dtype))
    for itemsize in (1, 2, 4, 8, 16):
        log(*deterministic.set_source(itemsize))
    for name, spec in fused_src.ELEMENTWISE.items():
        if multi_tensor.is_step(name):
            for dtype in dtypes:
                for slots in sorted({1, 8, multi_tensor.max_slots(spec)}):
                    log(*multi_tensor.source(spec, dtype, slots))
    for mode in ("l2", "inf"):
        for dtype in dtypes:
            for slots in (1, 64):
                log(*multi_tensor.norm_source(mode, dtype, slots))


def unreached() -> None:
    """Each ``fused_src`` kernel that no part above launched (the per-parameter fallbacks of
    steps that always fit the multi-tensor kernels, variants that fused paths never pick),
    logged as CuPy would generate it for float16, float32 and float64 contiguous arrays (``T``
    and ``S`` parameters arrays, typed ones scalars), so that every source compiles."""
    import json
    from polyten_cuda import fused_src

    with open(os.environ["POLYTEN_STANDIN_KERNEL_LOG"]) as f:
        seen = {json.loads(line)["name"] for line in f if line.strip()}

    def infos(spec, t):
        ins, outs = fused_src.params(spec.in_params), fused_src.params(spec.out_params)
        dts = [{"T": t, "S": "float64" if t == "float64" else "float32"}.get(ty, ty)
               for ty, _, _ in ins + outs]
        return [["nd", dt, 1, True] if raw or ty in ("T", "S") or k >= len(ins) else
                ["sc", dt] for k, ((ty, _, raw), dt) in enumerate(zip(ins + outs, dts))]

    for spec in fused_src.ELEMENTWISE.values():
        if spec.name in seen:
            continue
        for t in ("float16", "float32", "float64"):
            cs._log_kernel({"kind": "elementwise", "name": spec.name,
                            "in_params": spec.in_params, "out_params": spec.out_params,
                            "operation": spec.operation, "preamble": fused_src.PREAMBLE,
                            "options": [], "loop_prep": "", "after_loop": "",
                            "args": infos(spec, t), "indexer": 1})
    for spec in fused_src.REDUCTION.values():
        if spec.name in seen:
            continue
        types = ("int32", "int64") if spec.name == "polyten_index_check" else \
            ("float16", "float32", "float64")
        for t in types:
            cs._log_kernel({"kind": "reduction", "name": spec.name, "in_params": spec.in_params,
                            "out_params": spec.out_params, "map_expr": spec.map_expr,
                            "reduce_expr": spec.reduce_expr,
                            "post_map_expr": spec.post_map_expr, "identity": spec.identity,
                            "preamble": fused_src.PREAMBLE, "reduce_type": None, "options": [],
                            "args": infos(spec, t), "indexers": [1, 1]})


PARTS = {"conformance": conformance, "steps": steps, "paths": paths, "sources": sources,
         "unreached": unreached}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--skip", default="", help="parts not to run (comma-separated)")
    args = ap.parse_args(argv)
    if not os.environ.get("POLYTEN_STANDIN_KERNEL_LOG"):
        ap.error("set POLYTEN_STANDIN_KERNEL_LOG to the file the kernels are logged to")
    cs.install(devices=2)
    skip = {p.strip() for p in args.skip.split(",") if p.strip()}
    for part in args.parts.split(","):
        if part.strip() not in skip:
            PARTS[part.strip()]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
