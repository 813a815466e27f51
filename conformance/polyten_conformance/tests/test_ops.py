"""Every OpInfo of the op database: values, dtypes, error inputs, methods and aliases."""

from __future__ import annotations

import numpy as np

from polyten_conformance import harness as H
from polyten_conformance.harness import ConformanceFailure
from polyten_conformance.runner import pick_reject_sample


def test_values(value_case, conf):
    """The op on each sample of the dtype matches the NumPy reference: values, dtype, shape,
    device."""
    op, dtype = value_case
    fn = conf.resolve(op)
    seed = H.seed_for(op.name, dtype)
    samples = list(op.samples(dtype, np.random.default_rng(seed)))
    conf.run_samples(op, fn, dtype, samples, seed, f"{op.name} [{dtype}]")


def test_rejects_dtype(reject_case, conf):
    """A dtype outside the op's category raises TypeError naming the op and the dtype."""
    op, dtype = reject_case
    fn = conf.resolve(op)
    seed = H.seed_for("reject", op.name, dtype)
    sample = pick_reject_sample(op, dtype, np.random.default_rng(seed))
    if sample is None:
        H.not_applicable(f"no plain sample of {op.name} for {dtype}")
    # the dtype by name, or by its kind for complex ("complex tensors have no order")
    named = (dtype, "complex") if dtype.startswith("complex") else dtype
    category = op.opdef.dtypes if op.opdef else "?"
    es = H.ErrorSample(*sample.args, exc=TypeError, match=[op.err_name, named],
                       desc=f"{op.name} on {dtype} (the op table says {category})",
                       **sample.kwargs)
    problem = conf.check_raises(op, fn, es)
    if problem:
        raise ConformanceFailure(f"{op.name} [{dtype}] must be rejected "
                                 f"({op.kernel}; backend {conf.backend!r})\n{problem}")


def test_error_inputs(error_op, conf):
    """Bad input raises the same exception class with a message naming the op, everywhere."""
    op = error_op
    fn = conf.resolve(op)
    seed = H.seed_for("errors", op.name)
    problems = []
    cases = list(op.errors(np.random.default_rng(seed)))
    for es in cases:
        p = conf.check_raises(op, fn, es)
        if p:
            problems.append(p)
    if problems:
        raise ConformanceFailure(
            f"{op.name}: {len(problems)} of {len(cases)} error inputs are not reported as "
            f"required ({op.kernel}; backend {conf.backend!r})\n" + "\n".join(problems))


def test_method(method_op, conf):
    """``x.<method>(...)`` behaves as ``polyten.<op>(x, ...)`` (checked against the reference)."""
    op, dtype = method_op
    meth = op.method
    conf.need(f"Tensor.{meth}")
    seed = H.seed_for(op.name, dtype)
    samples = [s for s in op.samples(dtype, np.random.default_rng(seed))
               if s.args and isinstance(s.args[0], H.Arr)]

    def call(x, *args, **kwargs):
        return getattr(x, meth)(*args, **kwargs)

    def code(args, kwargs):
        return f"{args[0]!r}.{meth}({H.code_args(args[1:], kwargs)})"

    conf.run_samples(op, call, dtype, samples, seed, f"Tensor.{meth} [{dtype}]", code)


def test_alias(alias_case, conf):
    """Array API / PyTorch alternative names (``concat``, ``permute_dims``, ``subtract``...),
    called the way that name's standard spells the call."""
    op, alias, dtype = alias_case
    adapt = None
    if not isinstance(alias, str):
        alias, adapt = alias
    obj = conf.pt
    try:
        for part in alias.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        H.missing(f"polyten.{alias} (alias of {op.name}) is not defined")
    seed = H.seed_for(op.name, dtype)
    samples = list(op.samples(dtype, np.random.default_rng(seed)))
    if adapt is not None:
        samples = [_adapted(s, adapt) for s in samples]

    def code(args, kwargs):
        return f"polyten.{alias}({H.code_args(args, kwargs)})"

    conf.run_samples(op, obj, dtype, samples, seed, f"{alias} (alias of {op.name}) [{dtype}]",
                     code)


def _adapted(sample, adapt):
    args, kwargs = adapt(sample.args, sample.kwargs)
    return H.Sample(*args, desc=sample.desc, extra=sample.extra, **kwargs)


def test_kernel_present(kernel_name, backend_obj):
    """The backend implements every primitive of the op table (missing ones are listed)."""
    if kernel_name not in backend_obj.kernels:
        from polyten.dispatch.optable import OPS
        tier = OPS[kernel_name].tier
        if tier == "core":  # the core tier is the contract: every backend implements it
            raise ConformanceFailure(f"backend {backend_obj.name!r} has no kernel for "
                                     f"{kernel_name!r}, a primitive of the core tier that "
                                     f"every backend must implement")
        H.missing(f"backend {backend_obj.name!r} has no kernel for primitive {kernel_name!r} "
                  f"(the optional '{tier}' tier)")
    assert callable(backend_obj.kernels[kernel_name])
