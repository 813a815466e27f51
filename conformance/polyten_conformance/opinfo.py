"""``OpInfo``: what the suite knows about one public op (PyTorch ``OpInfo`` style).

An :class:`OpInfo` names the public callable (looked up lazily, so a function polyten does not
define yet is reported as *missing*), the op-table entry it dispatches to (which gives its tier,
accepted dtypes and result-dtype rule), a NumPy reference, sample inputs and error inputs.  The
generic tests in ``polyten_conformance/tests`` run every OpInfo of :mod:`polyten_conformance.opdb`
against the backend under test.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from polyten.dispatch.optable import DTYPE_CATEGORIES, OPS

from . import promotion as P
from .harness import Arr, DType, Sample, code_args

__all__ = ["OpInfo", "MissingAPI", "REAL_OF"]

REAL_OF = {"complex64": "float32", "complex128": "float64"}
ALL = P.DTYPE_NAMES


class MissingAPI(Exception):
    """The public function / method an OpInfo names does not exist."""


def _dtypes(spec) -> Tuple[str, ...]:
    if spec is None:
        return ()
    if isinstance(spec, str):
        spec = DTYPE_CATEGORIES[spec]
    return tuple(d for d in ALL if d in set(spec))


class OpInfo:
    """One public op of polyten and how to test it.

    Parameters
    ----------
    name : str
        The public name: ``"add"``, ``"linalg.inv"``, ``"Tensor.expand"`` (a method),
        ``"getitem"``.  Op patterns (``--ops``) match it.
    area : str
        elementwise, reduction, linalg, shape, indexing, creation, random, transfer.
    func : str, tuple of str or callable, optional
        Where the callable lives: a path under ``polyten`` (``"linalg.inv"``), ``"Tensor.x"``
        for a method called on the first argument, several alternatives, or a callable
        ``f(polyten, *args, **kwargs)`` (then ``requires`` lists what must exist and ``code``
        how the call reads in a reproducer).  Default: ``name``.
    optable : str, optional
        The op-table op it dispatches to (default: ``name`` when that is an op).  Gives the tier,
        default dtypes and the result-dtype rule.
    dtypes : category name or tuple, optional
        Dtypes to test (default: the op table's category).
    rejects : tuple or "auto", optional
        Dtypes that must raise ``TypeError`` naming the op and the dtype ("auto": every dtype
        outside the op table's category).
    samples : callable ``(dtype, rng) -> iterable of Sample``
    errors : callable ``(rng) -> iterable of ErrorSample``
    ref : callable
        NumPy reference, called like the op with :class:`~harness.Arr` arguments replaced by
        NumPy arrays upcast to float64 / complex128 / int64 (bool stays bool; index and mask
        arrays unchanged) and :class:`~harness.DType` by NumPy dtypes.
    result : rule name or callable ``(sample, dtype) -> str or tuple``
        The dtype(s) polyten must return (default: the op table's rule).  ``None`` entries of a
        tuple are not checked.
    scalar_operands : bool
        Python numbers among the positional arguments are weak operands of type promotion.
    float_compute : bool
        The reference computes in floating point even for integer inputs.
    tol : str
        Tolerance class ("default", "loose", "linalg").
    check : callable, optional
        ``check(out, ref_out, sample, dtype, ctx) -> list of problems`` replacing the default
        comparison (for results with several valid answers, e.g. sort indices on ties).
    ref_dtype : bool
        Pass ``_dtype=<test dtype name>`` to ``ref``.
    method : str, optional
        A Tensor method that must behave as the function (``x.sum(...)``).
    differentiable : bool, optional
        Whether gradients are checked (default: the op table's ``differentiable``).
    grad_samples : callable ``(dtype, rng) -> iterable of Sample``, optional
        Samples for the gradient checks (called with ``"float64"``), replacing the float64
        samples of ``samples``: for ops whose samples sit on kinks, jumps or poles (e.g. a grid
        where ``x / y`` is an integer).
    grad_skip : tuple of str
        Descriptions of ``samples`` left out of the gradient checks (a point where the op is not
        differentiable, e.g. ``round``'s halves).
    grad_func : callable ``f(polyten, *args, **kwargs)``, optional
        What the gradient checks call instead of the op (e.g. ``x.clone()`` before an in-place
        write, or ``a + a.mT`` before an op that reads one triangle), with ``grad_code``
        ``(args, kwargs) -> str`` the same call in a reproducer (lines ending in ``out = ...``).
    """

    def __init__(self, name: str, area: str, *, func=None, optable: Optional[str] = None,
                 dtypes=None, rejects="auto", samples: Callable = None,
                 errors: Optional[Callable] = None, ref: Optional[Callable] = None,
                 result=None, scalar_operands: bool = False, float_compute: bool = False,
                 tol: str = "default", check: Optional[Callable] = None,
                 ref_dtype: bool = False, method: Optional[str] = None,
                 requires: Sequence[str] = (), code: Optional[Callable] = None,
                 err_name: Optional[str] = None, reject_sample: Optional[Callable] = None,
                 tier: Optional[str] = None, differentiable: Optional[bool] = None,
                 grad_samples: Optional[Callable] = None, grad_skip: Sequence[str] = (),
                 grad_func: Optional[Callable] = None, grad_code: Optional[Callable] = None):
        self.name = name
        self.area = area
        self.func = func if func is not None else name
        if optable is None and name in OPS:
            optable = name
        self.optable = optable
        self.opdef = OPS.get(optable) if optable else None
        self.tier = tier or (self.opdef.tier if self.opdef else "core")
        if dtypes is None:
            dtypes = self.opdef.dtypes if self.opdef else "any"
        self.dtypes = _dtypes(dtypes)
        if rejects == "auto":
            rejects = tuple(d for d in ALL if d not in self.dtypes) if self.opdef else ()
        self.rejects = _dtypes(rejects) if rejects else ()
        self.samples = samples
        self.errors = errors
        self.ref = ref
        self.result = result if result is not None else (
            self.opdef.result if self.opdef else "same")
        self.scalar_operands = scalar_operands
        self.float_compute = float_compute
        self.tol = tol
        self.check = check
        self.ref_dtype = ref_dtype
        self.method = method
        self.requires = tuple(requires)
        self.code = code
        self.err_name = err_name or name.split(".")[-1]
        self.reject_sample = reject_sample
        if differentiable is None:
            differentiable = bool(self.opdef is not None and self.opdef.differentiable)
        self.differentiable = differentiable
        self.grad_samples = grad_samples
        self.grad_skip = tuple(grad_skip)
        self.grad_func = grad_func
        self.grad_code = grad_code

    def __repr__(self) -> str:
        return f"OpInfo({self.name!r})"

    @property
    def kernel(self) -> str:
        """How reports name what runs: ``kernel 'add'`` or ``no kernel of its own``."""
        return f"kernel {self.optable!r}" if self.optable else "composed of other ops"

    # -- the callable -------------------------------------------------------------------
    def resolve(self, pt) -> Callable:
        """The callable under test; :class:`MissingAPI` says what polyten lacks."""
        for path in self.requires:
            _lookup(pt, path)
        f = self.func
        if callable(f):
            return lambda *a, **k: f(pt, *a, **k)
        paths = (f,) if isinstance(f, str) else tuple(f)
        errors = []
        for path in paths:
            try:
                return _lookup(pt, path)
            except MissingAPI as exc:
                errors.append(str(exc))
        raise MissingAPI(" and ".join(errors))

    def call_code(self, args, kwargs) -> str:
        """The call as it reads in a reproducer, e.g. ``polyten.add(x0, x1)``."""
        if self.code is not None:
            return self.code(args, kwargs)
        f = self.func
        path = f if isinstance(f, str) else f[0]
        if path.startswith("Tensor."):
            return f"{args[0]!r}.{path[7:]}({code_args(args[1:], kwargs)})"
        return f"polyten.{path}({code_args(args, kwargs)})"

    # -- dtypes -----------------------------------------------------------------------------
    def expected_dtype(self, sample: Sample, dtype: str):
        r = self.result
        if callable(r):
            return r(sample, dtype)
        return rule_dtype(r, sample.data_dtypes(),
                          sample.scalars() if self.scalar_operands else [], dtype)

    def compute_dtype(self, sample: Sample) -> str:
        dts = sample.data_dtypes()
        sc = sample.scalars() if self.scalar_operands else []
        c = P.result_dtype(dts, sc) if (dts or sc) else "float64"
        if (self.float_compute or self.result in ("float", "promote_float")) and \
                P.kind(c) in "biu":
            c = "float64"
        return P.wide(c)

    # -- the reference ----------------------------------------------------------------------
    def reference(self, sample: Sample, dtype: str):
        wide = np.dtype(self.compute_dtype(sample))

        def conv(o):
            if isinstance(o, Arr):
                if o.role == "data":
                    return o.value.astype(wide)
                return o.value.copy()
            if isinstance(o, DType):
                return np.dtype(o.name)
            if isinstance(o, list):
                return [conv(x) for x in o]
            if isinstance(o, tuple):
                return tuple(conv(x) for x in o)
            return o

        args = [conv(a) for a in sample.args]
        kwargs = {k: conv(v) for k, v in sample.kwargs.items()}
        if self.ref_dtype:
            kwargs["_dtype"] = dtype
        with np.errstate(all="ignore"):
            return self.ref(*args, **kwargs)


def rule_dtype(rule: str, data_dtypes: List[str], scalars, dtype: str):
    """The op table's result-dtype rules, as the suite understands them."""
    if rule == "bool":
        return "bool"
    if rule == "int64":
        return "int64"
    if not data_dtypes and not scalars:
        return dtype
    p = P.result_dtype(data_dtypes, scalars)
    if rule == "same":
        return data_dtypes[0] if data_dtypes else p
    if rule == "promote":
        return p
    if rule in ("float", "promote_float"):
        return p if P.kind(p) in "fc" else P.DEFAULT_FLOAT
    if rule == "real":
        return REAL_OF.get(p, p)
    raise ValueError(f"rule {rule!r} needs an explicit result= in the OpInfo")


def _lookup(pt, path: str):
    if path.startswith("Tensor."):
        meth = path[7:]
        if not hasattr(pt.Tensor, meth):
            raise MissingAPI(f"polyten.Tensor has no method {meth!r}")
        return lambda self, *a, **k: getattr(self, meth)(*a, **k)
    obj = pt
    walked = "polyten"
    for part in path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise MissingAPI(f"{walked}.{part} is not defined") from None
        walked += "." + part
    if not callable(obj):
        raise MissingAPI(f"{walked} is not callable")
    return obj
