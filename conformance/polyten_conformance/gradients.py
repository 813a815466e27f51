"""Gradient checks of the conformance suite: ``gradcheck`` / ``gradgradcheck`` through the
backend under test.

Every OpInfo whose op is differentiable (the op table's ``differentiable``, or the OpInfo's
``differentiable=`` override) is checked on its float64 samples: the inputs are created on the
backend under test, every float64 data operand requires grad, and
:func:`polyten.autograd.gradcheck` (first derivatives) and
:func:`polyten.autograd.gradgradcheck` (second derivatives) compare the analytical
derivatives -- the rules of ``polyten/autograd/derivatives.py`` evaluated with the backend's
kernels -- against central differences of the backend's own forward kernels.  The first-order
test also checks that the gradients have the inputs' shapes, dtype and device, and that integer
and bool outputs (indices, masks) do not require grad.

Samples are the OpInfo's float64 samples, restricted to small ones (a numerical Jacobian costs
two forward calls per input element, gradgradcheck also one backward each) with finite values;
an OpInfo's ``grad_samples`` / ``grad_skip`` hints keep them away from kinks, jumps and poles.
Samples whose differentiable outputs are not float64 (a cast to float32 or complex) are left out:
central differences in float32 are too coarse to judge.

Ops that are not differentiable are checked the other way round: with inputs that require grad,
no output requires grad and asking for a gradient raises.
"""

from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import numpy as np

from . import harness as H
from .harness import ConformanceFailure, Materialized, Sample
from .opinfo import OpInfo

__all__ = ["GRAD_DTYPE", "MAX_INPUT_ELEMENTS", "gradient_samples", "has_float_inputs",
           "check_gradients", "check_no_grad"]

GRAD_DTYPE = "float64"
# all differentiable inputs of a sample together: gradgradcheck of a 32-element sample takes
# well under a second on cpu
MAX_INPUT_ELEMENTS = 32
MAX_REPORTED = 3


# ------------------------------------------------------------------------------- samples ---
def _float_data(sample: Sample):
    return [a for a in sample.arrs() if a.role == "data" and a.dtype == GRAD_DTYPE]


def gradient_samples(op: OpInfo, rng) -> List[Sample]:
    """The float64 samples the gradient checks use (small, finite, not on a kink)."""
    if op.grad_samples is not None:
        samples = list(op.grad_samples(GRAD_DTYPE, rng))
    else:
        samples = [s for s in op.samples(GRAD_DTYPE, rng) if s.desc not in op.grad_skip]
    out = []
    for s in samples:
        data = _float_data(s)
        if not data:
            continue
        if not all(np.all(np.isfinite(a.value)) for a in data):
            continue  # nan/inf samples: no derivative to compare with
        if sum(a.value.size for a in data) > MAX_INPUT_ELEMENTS:
            continue
        out.append(s)
    return out


def has_float_inputs(op: OpInfo) -> bool:
    """Whether some float64 sample of ``op`` has a tensor operand that can require grad."""
    if GRAD_DTYPE not in op.dtypes or op.samples is None:
        return False
    try:
        samples = (op.grad_samples or op.samples)(GRAD_DTYPE, np.random.default_rng(0))
        return any(_float_data(s) for s in samples)
    except Exception:
        return True  # let the test report whatever goes wrong


# ----------------------------------------------------------------------- one sample, built ---
class _Case:
    """One sample materialised on the backend, with its float64 operands requiring grad and
    ``fn(*diff_inputs) -> tuple of outputs`` (what gradcheck differentiates)."""

    def __init__(self, conf, op: OpInfo, call: Callable, sample: Sample):
        self.conf = conf
        self.op = op
        self.sample = sample
        self.mat = Materialized(conf.pt, sample, conf.device)
        named: list = []
        _collect_named(self.mat.args, named)
        _collect_named(tuple(self.mat.kwargs.values()), named)
        arrs = sample.arrs()
        self.diff = [n for n, a in zip(named, arrs) if a.role == "data" and a.dtype == GRAD_DTYPE]
        self.inputs = tuple(n.t.requires_grad_() for n in self.diff)
        names = [n.name for n in self.diff]
        mat = self.mat

        def fn(*ts):
            sub = dict(zip(names, ts))
            args = _subst(mat.args, sub)
            kwargs = {k: _subst(v, sub) for k, v in mat.kwargs.items()}
            return _as_outputs(call(*args, **kwargs))

        self.fn = fn

    def code(self) -> str:
        """A reproducer's body: the inputs, ``fn`` and the gradient call is added by the test."""
        op, mat = self.op, self.mat
        if op.grad_func is not None:
            body = op.grad_code(mat.args, mat.kwargs) if op.grad_code else \
                f"out = <gradient wrapper of {op.name}>"
        else:
            body = op.call_code(mat.args, mat.kwargs)
        if "out =" not in body:
            body = f"out = {body}"
        params = ", ".join(n.name for n in self.diff)
        lines = ["import numpy as np", "import polyten",
                 "from polyten.autograd import gradcheck, gradgradcheck",
                 f"polyten.set_backend({self.conf.backend!r})"] + list(mat.lines)
        lines += [f"{n.name}.requires_grad_()" for n in self.diff]
        lines.append(f"def fn({params}):")
        lines += ["    " + ln for ln in body.split("\n")]
        lines.append("    return out")
        return "\n".join(lines)


def _collect_named(obj, out):
    if isinstance(obj, H._Named):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _collect_named(o, out)


def _subst(obj, sub):
    if isinstance(obj, H._Named):
        return sub.get(obj.name, obj.t)
    if isinstance(obj, list):
        return [_subst(o, sub) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_subst(o, sub) for o in obj)
    return obj


def _as_outputs(out) -> tuple:
    if isinstance(out, (tuple, list)):
        return tuple(out)
    return (out,)


def _tensors(outs) -> list:
    Tensor = H._tensor_cls()
    return [o for o in outs if isinstance(o, Tensor)]


# -------------------------------------------------------------------------------- checks ---
def _resolve(conf, op: OpInfo) -> Callable:
    """The callable the gradient checks differentiate (``grad_func`` or the op itself)."""
    fn = conf.resolve(op)  # a 'missing' skip when polyten lacks the op
    if op.grad_func is None:
        return fn
    pt = conf.pt
    return lambda *a, **k: op.grad_func(pt, *a, **k)


def _problem(exc: BaseException, what: str) -> str:
    from polyten.autograd import GradcheckError
    if isinstance(exc, GradcheckError):
        return f"{what}: {exc}"
    return f"{what} raised {type(exc).__name__}: {exc}\n{H.short_traceback(exc)}"


def _first_order_extras(case: _Case, outs, backend_type: str) -> List[str]:
    """Non-float outputs do not require grad; gradients have the inputs' shape, dtype, device."""
    pt = case.conf.pt
    problems = []
    for i, o in enumerate(_tensors(outs)):
        if o.dtype.kind not in "fc" and o.requires_grad:
            problems.append(f"output {i} ({o.dtype.name}) requires grad: integer and bool "
                            f"outputs are not differentiable")
    roots = [o for o in _tensors(outs) if o.dtype.kind in "fc" and o.requires_grad]
    if not roots:
        return problems
    grads = pt.autograd.grad(roots, list(case.inputs), [pt.ones_like(o) for o in roots],
                             allow_unused=True, materialize_grads=True)
    for i, (x, g) in enumerate(zip(case.inputs, grads)):
        name = case.diff[i].name
        if not isinstance(g, pt.Tensor):
            problems.append(f"gradient of {name}: expected a tensor, got {type(g).__name__}")
            continue
        if tuple(g.shape) != tuple(x.shape):
            problems.append(f"gradient of {name}: shape {tuple(g.shape)}, expected the "
                            f"input's {tuple(x.shape)}")
        if g.dtype.name != GRAD_DTYPE:
            problems.append(f"gradient of {name}: dtype {g.dtype.name}, expected {GRAD_DTYPE}")
        dev = getattr(g.device, "type", str(g.device))
        if dev != backend_type:
            problems.append(f"gradient of {name}: on device {g.device}, expected the input's "
                            f"backend {backend_type!r}")
    return problems


def check_gradients(conf, op: OpInfo, order: int) -> None:
    """gradcheck (``order=1``) or gradgradcheck (``order=2``) of every gradient sample of
    ``op``; raises ConformanceFailure with a reproducer per failing sample."""
    from polyten.autograd import gradcheck, gradgradcheck
    call = _resolve(conf, op)
    seed = H.seed_for("gradients", op.name)
    samples = gradient_samples(op, np.random.default_rng(seed))
    check = gradcheck if order == 1 else gradgradcheck
    check_name = check.__name__
    failures = []
    missing = []
    used = 0
    for i, s in enumerate(samples):
        try:
            case = _Case(conf, op, call, s)
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                missing.append(why)
                continue
            failures.append((i, s, [f"building the inputs failed: {type(exc).__name__}: "
                                    f"{exc}"], ""))
            continue
        try:
            outs = case.fn(*case.inputs)
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                missing.append(why)
            else:
                failures.append((i, s, [_problem(exc, "the forward call")],
                                 case.code() + "\nout = fn(" +
                                 ", ".join(n.name for n in case.diff) + ")"))
            continue
        floats = [o for o in _tensors(outs) if o.dtype.kind in "fc"]
        if any(o.dtype.name != GRAD_DTYPE for o in floats):
            continue  # a float32 / complex result: central differences cannot judge it
        used += 1
        args = ", ".join(n.name for n in case.diff)
        comma = "," if len(case.diff) == 1 else ""
        repro = case.code() + f"\nprint({check_name}(fn, ({args}{comma})))"
        problems: List[str] = []
        try:
            if order == 1:
                problems += _first_order_extras(case, outs, conf.device_type)
            if not problems:
                check(case.fn, case.inputs)
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                missing.append(why)
                continue
            problems.append(_problem(exc, check_name))
            unrecorded = [k for k, o in enumerate(_tensors(outs))
                          if o.dtype.kind in "fc" and not o.requires_grad]
            if unrecorded:
                problems.append(f"note: output(s) {unrecorded} do not require grad although "
                                f"the inputs do: the op recorded no graph node for them")
        if problems:
            failures.append((i, s, problems, repro))
    if failures:
        raise ConformanceFailure(_failure_text(conf, op, check_name, seed, failures,
                                               len(samples)))
    if missing:
        H.missing(f"{op.name} ({check_name}): {missing[0]}")
    if not used:
        H.not_applicable(f"{op.name}: no float64 sample small enough for {check_name}")


def check_no_grad(conf, op: OpInfo) -> None:
    """A non-differentiable op given inputs that require grad: no output requires grad (or has
    a grad_fn), and asking for a gradient raises RuntimeError."""
    pt = conf.pt
    call = conf.resolve(op)
    seed = H.seed_for("no_grad", op.name)
    samples = [s for s in op.samples(GRAD_DTYPE, np.random.default_rng(seed)) if _float_data(s)]
    failures = []
    missing = []
    for i, s in enumerate(samples):
        try:
            case = _Case(conf, op, call, s)
            outs = case.fn(*case.inputs)
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                missing.append(why)
                continue
            failures.append((i, s, [f"raised {type(exc).__name__} with inputs that require "
                                    f"grad: {exc}\n{H.short_traceback(exc)}"], ""))
            continue
        problems = []
        for k, o in enumerate(_tensors(outs)):
            if o.requires_grad or o.grad_fn is not None:
                problems.append(f"output {k} ({o.dtype.name}) requires grad (grad_fn "
                                f"{o.grad_fn!r}), but {op.name} is not differentiable")
                continue
            try:
                pt.autograd.grad([o], list(case.inputs), [pt.ones_like(o)])
            except RuntimeError:
                pass
            except Exception as exc:
                problems.append(f"asking for the gradient of output {k} raised "
                                f"{type(exc).__name__} instead of RuntimeError: {exc}")
            else:
                problems.append(f"asking for the gradient of output {k} did not raise")
        if problems:
            args = ", ".join(n.name for n in case.diff)
            repro = case.code() + f"\nouts = fn({args})\nprint(outs)  # expected: " \
                                  f"requires_grad=False everywhere"
            failures.append((i, s, problems, repro))
    if failures:
        raise ConformanceFailure(_failure_text(conf, op, "no gradient", seed, failures,
                                               len(samples)))
    if missing:
        H.missing(f"{op.name}: {missing[0]}")
    if not samples:
        H.not_applicable(f"{op.name}: no float64 sample with a tensor operand")


def _failure_text(conf, op, what, seed, failures: Sequence[Tuple], n: int) -> str:
    head = (f"{op.name} [{what}]: {len(failures)} of {n} samples do not conform "
            f"(backend {conf.backend!r}; polyten.{op.name} -> {op.kernel}; float64; "
            f"seed {seed})")
    parts = [head]
    for i, s, problems, repro in failures[:MAX_REPORTED]:
        parts.append(f"\n--- sample {i}: {s.describe()}")
        parts += ["  " + p.replace("\n", "\n  ") for p in problems]
        if repro:
            parts.append("  reproducer:\n" + "\n".join("    " + ln for ln in repro.split("\n")))
    if len(failures) > MAX_REPORTED:
        rest = ", ".join(f"{i} ({s.desc})" for i, s, _, _ in failures[MAX_REPORTED:])
        parts.append(f"\n... and samples {rest}")
    return "\n".join(parts)
