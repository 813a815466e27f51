"""The rest of PyTorch's everyday surface, composed from public polyten ops (the sequel of
:mod:`polyten.api.derived_more`):

* in-place Tensor methods torch has and polyten lacked: comparisons and logical ops written
  back in ``self``'s dtype (``eq_``, ``lt_``, ``logical_and_``, ...), ``cumsum_``,
  ``addmm_`` and friends, ``swapaxes_`` (which changes the view, as torch), ``fill_diagonal_``,
  ``put_``, and the random fills ``cauchy_``, ``geometric_``, ``log_normal_``;
* torch's top-level in-place spellings (``torch.exp_(x)`` is ``x.exp_()``);
* small Tensor methods and functions: ``angle``, ``conj_physical``, ``resolve_conj``,
  ``sum_to_size``, ``resize_``, ``split_with_sizes``, ``matrix_exp``, ...;
* the legacy linear algebra still in torch's namespace (``torch.svd`` returning ``V``,
  ``torch.lu`` / ``lu_unpack`` / ``lu_solve``, ``triangular_solve``, ...) over
  :mod:`polyten.linalg`, so their gradients are linalg's;
* ``binomial``, ``poisson``, ``histogramdd``, ``empty_strided``, ``frombuffer``.

In-place forms keep the tensor's identity and memory, bump its version counter and take part
in autograd as PyTorch's do (through :func:`polyten.api.elementwise._inplace_generic`'s
rebase).  Random draws go through polyten's sampling functions, so ``manual_seed`` and
``generator=`` apply.  polyten has no lazy conjugate / negative bits and no inference-tensor
flag: ``is_conj`` and ``is_neg`` are always False and ``Tensor.is_inference`` is not provided.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections import namedtuple

from . import dtypes as _dt
from ._core import Tensor, bump_version, check_inplace, describe, normalize_dim, shape_tuple
from .elementwise import _assign_result, _graph_inplace, _inplace_generic
from .elementwise import _grad_on
from .random import _takes_generator
from .random import _write as _random_write

__all__ = [
    # the function behind Tensor.put / put_
    "put",
    # torch.<name>_ spellings (_TOP_INPLACE) are appended below
    # small functions
    "angle", "conj_physical", "conj_physical_", "resolve_conj", "resolve_neg", "is_conj",
    "is_neg", "is_same_size", "detach", "narrow_copy", "split_with_sizes", "unsafe_chunk",
    "unsafe_split", "unsafe_split_with_sizes", "resize_as_", "matrix_exp",
    "embedding_renorm_",
    # legacy linear algebra
    "qr", "svd", "cholesky", "lu", "lu_unpack", "lu_solve", "triangular_solve",
    "nuclear_norm", "frobenius_norm",
    # sampling and creation
    "binomial", "poisson", "histogramdd", "empty_strided", "frombuffer",
]

_int, _float, _bool = builtins.int, builtins.float, builtins.bool

SVDResult = namedtuple("svd", ("U", "S", "V"))
LUWithInfoResult = namedtuple("_lu_with_info", ("LU", "pivots", "info"))
LUUnpackResult = namedtuple("lu_unpack", ("P", "L", "U"))
TriangularSolveResult = namedtuple("triangular_solve", ("solution", "cloned_coefficient"))
HistogramddResult = namedtuple("histogramdd", ("hist", "bin_edges"))


def _pt():
    import polyten
    return polyten


def _tensor(x, op: str, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {describe(x)}")
    return x


def _no_grad():
    from ..autograd.grad_mode import no_grad
    return no_grad()


def _requires_grad(t) -> bool:
    return isinstance(t, Tensor) and t._ag is not None and t._ag.requires_grad


def _lazy(name: str):
    """``polyten.<name>``, looked up at call time (the module is imported before some of the
    functions it composes are installed)."""
    def fn(*args, **kwargs):
        return getattr(_pt(), name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    return fn


class _ZeroGrad:
    """``values`` recorded as a function of ``x`` with a zero gradient: what torch does for
    the non-differentiable in-place ops (``eq_``) on a graph tensor and for ``poisson``."""
    _cls = None

    @classmethod
    def apply(cls, x, values):
        if cls._cls is None:
            from ..autograd.function import Function

            class ZeroGrad(Function):
                @staticmethod
                def forward(ctx, a, v):
                    ctx.shape = tuple(a.shape)
                    return v.clone()

                @staticmethod
                def backward(ctx, g):
                    return _pt().zeros(ctx.shape, dtype=g.dtype, device=g.device), None
            cls._cls = ZeroGrad
        return cls._cls.apply(x, values)


def _renamed(iname: str, method):
    """``method`` whose TypeError / ValueError / IndexError messages name ``iname`` (the
    user's call) rather than the out-of-place op inside it."""
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (TypeError, ValueError, IndexError) as exc:
            msg = str(exc)
            if msg.startswith(iname):
                raise
            try:
                new = type(exc)(f"{iname}: {msg}")
            except Exception:
                raise exc from None
            raise new from None
    call.__name__ = call.__qualname__ = iname
    call.__doc__ = method.__doc__
    return call


def _graph_result(fn):
    """``fn``'s result, kept in the graph with a zero gradient when ``fn`` records nothing
    (``heaviside``, ``sgn`` of a real tensor: torch's gradient there is zero)."""
    def call(s, *args, **kwargs):
        res = fn(s, *args, **kwargs)
        if not _grad_on() or not any(_requires_grad(a) for a in
                                     (s,) + args + tuple(kwargs.values())):
            return res
        if res._ag is None or not res._ag.requires_grad:
            src = s if _requires_grad(s) else next(
                a for a in list(args) + list(kwargs.values()) if _requires_grad(a))
            res = _ZeroGrad.apply(src, res)
        return res
    return call


# =============================================================================================
# 1. In-place Tensor methods
# =============================================================================================
def _nondiff_inplace(public: str, name: str, nargs: int):
    """``self.<name>_(...)`` for a comparison / logical op: the bool result is written back in
    ``self``'s dtype (``True`` -> 1), as torch.  On a graph tensor the write is recorded with a
    zero gradient, as torch's ``EqBackward0``."""
    iname = f"{public}_"
    fn = _lazy(name)

    def method(self, *args):
        _tensor(self, iname, "self")
        if len(args) != nargs:
            raise TypeError(f"{iname}: takes {nargs} argument{'s' if nargs != 1 else ''} "
                            f"besides self, got {len(args)}")
        args = tuple(a.detach() if isinstance(a, Tensor) else a for a in args)
        if _requires_grad(self) and _grad_on():
            def result(s, *a):
                return _ZeroGrad.apply(s, fn(s.detach(), *a).to(s.dtype))
            return _graph_inplace(iname, self, result, args)
        res = fn(self, *args)
        check_inplace(iname, self)
        return _assign_result(iname, self, res)

    method = _renamed(iname, method)
    method.__doc__ = (f"In-place :func:`polyten.{name}`: the result is written into this "
                      f"tensor, converted to its dtype (``True`` -> 1).")
    return method


_COMPARE = {"eq": "eq", "ne": "ne", "not_equal": "ne", "lt": "lt", "le": "le", "gt": "gt",
            "ge": "ge", "less": "lt", "less_equal": "le", "greater": "gt",
            "greater_equal": "ge"}
_LOGICAL = {"logical_and": 1, "logical_or": 1, "logical_xor": 1, "logical_not": 0}
# differentiable ones: computed out of place and written back (recorded through a rebase)
_GENERIC = ("cumsum", "cumprod", "addmm", "addmv", "addbmm", "baddbmm", "xlogy", "sinc",
            "frac", "deg2rad", "rad2deg", "heaviside", "logit", "sgn", "renorm",
            "index_fill", "masked_scatter")


def _swap_inplace(iname: str):
    def method(self, dim0, dim1):
        _tensor(self, iname, "self")
        pt = _pt()
        if _requires_grad(self) and _grad_on():
            if self._ag.grad_fn is None:
                check_inplace(iname, self)  # raises: a leaf that requires grad
            res = pt.swapaxes(self, dim0, dim1)  # recorded: self takes its node
            self._data = res._data
            bump_version(self)
            self._ag.grad_fn = res._ag.grad_fn
            self._ag.output_nr = res._ag.output_nr
            return self
        with _no_grad():
            res = pt.swapaxes(self, dim0, dim1)
        check_inplace(iname, self)
        self._data = res._data  # the same memory, seen through the swapped view
        return self

    method.__name__ = method.__qualname__ = iname
    method.__doc__ = (f"``{iname}(dim0, dim1)``: this tensor becomes its view with the two "
                      f"dims swapped (same memory and identity; as torch's ``{iname}``).")
    return method


def _diagonal_mask(op: str, x: Tensor, wrap: bool) -> Tensor:
    pt = _pt()
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(f"{op}: the tensor must have at least 2 dims, got shape {shape}")
    dev = x.device
    if len(shape) > 2:
        if len(set(shape)) != 1:
            raise ValueError(f"{op}: all dims of a tensor with more than 2 dims must have the "
                             f"same length, got shape {shape}")
        idx = [pt.arange(shape[0], device=dev).reshape((-1,) + (1,) * (len(shape) - 1 - d))
               for d in range(len(shape))]
        mask = idx[0] == idx[1]
        for d in range(2, len(shape)):
            mask = mask & (idx[0] == idx[d])
        return mask
    n, m = shape
    r = pt.arange(n, device=dev).unsqueeze(1)
    c = pt.arange(m, device=dev).unsqueeze(0)
    if wrap and n > m + 1:
        # numpy's / torch's wrap: the diagonal restarts every m + 1 rows (a blank row between)
        return ((r - c) % (m + 1) == 0) & (r >= c)
    return r == c


def _fill_diagonal(input, fill_value, wrap=False) -> Tensor:
    x = _tensor(input, "fill_diagonal_", "self")
    mask = _diagonal_mask("fill_diagonal_", x, _bool(wrap))
    if isinstance(fill_value, Tensor):
        if fill_value.numel() != 1:
            raise ValueError(f"fill_diagonal_: fill_value must be a number or a one-element "
                             f"tensor, got {describe(fill_value)}")
        return _pt().where(mask, fill_value.reshape(()).to(x.dtype), x)
    if x.dtype.kind in "iu" and isinstance(fill_value, _float):
        fill_value = _int(fill_value)  # torch truncates toward zero into integer tensors
    return _pt().masked_fill(x, mask, fill_value)


def _fill_diagonal_(self, fill_value, wrap=False) -> Tensor:
    """Fill the main diagonal in place (``Tensor.fill_diagonal_``): ``self[i, i] = fill_value``
    for a 2-D tensor (any shape), ``self[i, i, ..., i]`` for one with more dims, all of the
    same length.  ``wrap=True`` restarts the diagonal every ``m + 1`` rows of a tall ``(n, m)``
    matrix, as NumPy's ``fill_diagonal``."""
    return _FILL_DIAGONAL_(self, fill_value, wrap)


_FILL_DIAGONAL_ = _inplace_generic("fill_diagonal", _fill_diagonal)


def put(input, index, source, accumulate=False) -> Tensor:
    """``input`` with ``source``'s values at the flat positions ``index`` (``torch.put``).

    The positions are row-major indices into ``input`` as if it were flattened (negative
    ones count from the end); ``accumulate=True`` adds instead of writing, so repeated
    positions sum.  Differentiable with respect to ``input`` and ``source``.

    Parameters
    ----------
    input : Tensor
    index : Tensor
        int64, any shape, with as many elements as ``source``.
    source : Tensor
        Of ``input``'s dtype.
    accumulate : bool
    """
    op = "put"
    pt = _pt()
    x = _tensor(input, op)
    idx = _tensor(index, op, "index")
    src = _tensor(source, op, "source")
    if idx.dtype is not _dt.int64:
        raise TypeError(f"{op}: index must be an int64 tensor, got {idx.dtype.name}; cast it "
                        f"with index.long()")
    if src.dtype is not x.dtype:
        raise TypeError(f"{op}: source must have input's dtype {x.dtype.name}, got "
                        f"{src.dtype.name}; cast it with source.to({x.dtype.name})")
    if idx.numel() != src.numel():
        raise ValueError(f"{op}: index and source must have the same number of elements, got "
                         f"{idx.numel()} (shape {tuple(idx.shape)}) and {src.numel()} (shape "
                         f"{tuple(src.shape)})")
    n = x.numel()
    flat_idx = idx.reshape(-1)
    if flat_idx.numel():
        if n == 0 or _bool(((flat_idx < -n) | (flat_idx >= n)).any()):
            bad = int(flat_idx[(flat_idx < -n) | (flat_idx >= n)][0].item())
            raise IndexError(f"{op}: index {bad} is out of range for a tensor of {n} elements "
                             f"(shape {tuple(x.shape)}); indices must be in [{-n}, {n - 1}]")
        flat_idx = pt.where(flat_idx < 0, flat_idx + n, flat_idx)
    flat = x.reshape(-1)
    vals = src.reshape(-1)
    if accumulate:
        out = flat.index_add(0, flat_idx, vals)
    else:
        out = pt.index_put(flat, (flat_idx,), vals)
    return out.reshape(tuple(x.shape))


_PUT_ = _inplace_generic("put", put)


def _put_method(self, index, source, accumulate=False):
    return put(self, index, source, accumulate)


def _put_(self, index, source, accumulate=False):
    return _PUT_(self, index, source, accumulate)


_put_.__doc__ = "In-place :func:`put`: ``self.put_(index, source, accumulate=False)``."
_put_method.__doc__ = put.__doc__


# --- random fills -------------------------------------------------------------------------
def _real_float_self(op: str, self) -> None:
    _tensor(self, op, "self")
    if self.dtype.kind != "f":
        raise TypeError(f"{op}: the distribution is continuous; the tensor must be real "
                        f"floating point, got {self.dtype.name}")


def _work_dtype(dt):
    """Draws for float16 / bfloat16 (and integer targets) are made in float32 / float64."""
    if dt in (_dt.float32, _dt.float64):
        return dt
    return _dt.float32 if dt.kind == "f" else _dt.float64


def _number(op: str, name: str, v) -> float:
    if isinstance(v, Tensor) and v.numel() == 1:
        v = v.item()
    if isinstance(v, _bool) or not isinstance(v, (_int, _float)):
        try:
            v = operator.index(v)
        except TypeError:
            try:
                v = _float(v)
            except (TypeError, ValueError):
                raise TypeError(f"{op}: {name} must be a number, got {describe(v)}") from None
    return _float(v)


def _fill_random(self: Tensor, values: Tensor) -> Tensor:
    from ._core import cast
    return _random_write(self, cast(values, self.dtype))


@_takes_generator
def cauchy_(self, median=0.0, sigma=1.0, *, generator=None) -> Tensor:
    """Fill in place with Cauchy samples ``median + sigma * tan(pi * (U - 1/2))``
    (``Tensor.cauchy_``)."""
    _real_float_self("cauchy_", self)
    med = _number("cauchy_", "median", median)
    s = _number("cauchy_", "sigma", sigma)
    if not s > 0:
        raise ValueError(f"cauchy_: expects sigma > 0.0, but found sigma={s}")
    pt = _pt()
    u = pt.rand(tuple(self.shape), dtype=_work_dtype(self.dtype), device=self.device)
    return _fill_random(self, pt.tan((u - 0.5) * math.pi) * s + med)


@_takes_generator
def geometric_(self, p, *, generator=None) -> Tensor:
    """Fill in place with geometric samples on ``{1, 2, ...}``: the number of Bernoulli(``p``)
    trials up to and including the first success (``Tensor.geometric_``; real dtypes)."""
    _tensor(self, "geometric_", "self")
    if self.dtype.kind not in "iuf":
        raise TypeError(f"geometric_: not supported for {self.dtype.name} tensors (real "
                        f"floating or integer dtypes only)")
    q = _number("geometric_", "p", p)
    if not 0 < q < 1:
        raise ValueError(f"geometric_: expects p to be in (0, 1), but got p={q}")
    pt = _pt()
    u = pt.rand(tuple(self.shape), dtype=_work_dtype(self.dtype), device=self.device)
    # inversion: ceil(log(V) / log(1 - p)) with V = 1 - U in (0, 1]; V = 1 would give 0
    g = pt.ceil(pt.log1p(-u) / math.log1p(-q)).clamp(min=1)
    return _fill_random(self, g)


@_takes_generator
def log_normal_(self, mean=1.0, std=2.0, *, generator=None) -> Tensor:
    """Fill in place with ``exp(N(mean, std**2))`` samples (``Tensor.log_normal_``)."""
    _real_float_self("log_normal_", self)
    m = _number("log_normal_", "mean", mean)
    s = _number("log_normal_", "std", std)
    if not s > 0:
        raise ValueError(f"log_normal_: expects std > 0.0, but found std={s}")
    pt = _pt()
    z = pt.randn(tuple(self.shape), dtype=_work_dtype(self.dtype), device=self.device)
    return _fill_random(self, pt.exp(z * s + m))


# =============================================================================================
# 2. torch.<name>_(input, ...) spellings of in-place Tensor methods
# =============================================================================================
_TOP_INPLACE = (
    "abs_", "acos_", "acosh_", "addmv_", "arccos_", "arccosh_", "arcsin_", "arcsinh_",
    "arctan_", "arctanh_", "asin_", "asinh_", "atan_", "atanh_", "ceil_", "clamp_",
    "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_", "detach_", "erf_",
    "erfc_", "exp2_", "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_", "gcd_", "i0_",
    "lcm_", "ldexp_", "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_",
    "negative_", "rad2deg_", "reciprocal_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_",
    "sinh_", "sqrt_", "square_", "tan_", "tanh_", "trunc_", "xlogy_", "zero_")


def _top_inplace(name: str):
    def fn(input, *args, **kwargs):
        _tensor(input, name)
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``torch.{name}(input, ...)``: ``input.{name}(...)``, which modifies "
                  f"``input`` in place and returns it.")
    return fn


for _n in _TOP_INPLACE:
    globals()[_n] = _top_inplace(_n)
__all__ += list(_TOP_INPLACE)


def orgqr(input, tau) -> Tensor:
    """``torch.orgqr``: the legacy name of :func:`polyten.linalg.householder_product` (the
    matrix with orthonormal columns that ``geqrf``'s reflectors ``input`` and ``tau`` stand
    for)."""
    return _pt().linalg.householder_product(input, tau)


__all__ += ["orgqr"]


def embedding_renorm_(input, indices, max_norm, norm_type) -> Tensor:
    """Rescale in place the rows of ``input`` (2-D) selected by ``indices`` whose
    ``norm_type``-norm exceeds ``max_norm`` to norm ``max_norm`` (``torch.embedding_renorm_``;
    what ``embedding(..., max_norm=)`` does to its table).  Not recorded by autograd, as torch.
    """
    op = "embedding_renorm_"
    w = _tensor(input, op)
    idx = _tensor(indices, op, "indices")
    if w.ndim != 2:
        raise ValueError(f"{op}: input must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{tuple(w.shape)}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor, got {idx.dtype.name}")
    flat = idx.reshape(-1)
    if flat.numel():
        n = w.shape[0]
        if _bool(((flat < 0) | (flat >= n)).any()):
            raise IndexError(f"{op}: indices must be in [0, {n - 1}] for a table of {n} rows")
        from ..nn.functional._misc import _renorm_rows
        _renorm_rows(w, flat, _number(op, "max_norm", max_norm),
                     _number(op, "norm_type", norm_type))
    return w


# =============================================================================================
# 3. Small Tensor methods and functions
# =============================================================================================
class _AngleReal:
    _cls = None

    @classmethod
    def apply(cls, x):
        if cls._cls is None:
            from ..autograd.function import Function

            class AngleReal(Function):
                @staticmethod
                def forward(ctx, a):
                    pt = _pt()
                    v = pt.where(a < 0, pt.full_like(a, math.pi), pt.zeros_like(a))
                    return pt.where(pt.isnan(a), a, v)

                @staticmethod
                def backward(ctx, g):
                    # torch: the angle of a real number has a zero gradient
                    return _pt().zeros_like(g)
            cls._cls = AngleReal
        return cls._cls.apply(x)


def angle(input) -> Tensor:
    """The argument of each element (``torch.angle``): ``atan2(imag, real)`` for complex
    tensors (a real result); for real ones ``pi`` for negative values, ``0`` otherwise, NaN
    kept (integers give the default float dtype).  The gradient of a real input is 0."""
    pt = _pt()
    x = _tensor(input, "angle")
    if x.dtype.is_complex:
        return pt.atan2(pt.imag(x), pt.real(x))
    if not x.dtype.is_floating_point:
        x = x.to(_dt.get_default_dtype())
    return _AngleReal.apply(x)


def conj_physical(input) -> Tensor:
    """The complex conjugate, materialised (``torch.conj_physical``); a real tensor is
    returned as is.  (polyten's :func:`polyten.conj` materialises too.)"""
    x = _tensor(input, "conj_physical")
    return _pt().conj(x) if x.dtype.is_complex else x


_CONJ_ = _inplace_generic("conj_physical", lambda x: _pt().conj(x))


def conj_physical_(input) -> Tensor:
    """Conjugate ``input`` in place (``torch.conj_physical_``); real tensors are left as they
    are."""
    x = _tensor(input, "conj_physical_")
    return _CONJ_(x) if x.dtype.is_complex else x


def resolve_conj(input) -> Tensor:
    """``input`` itself: polyten never sets a lazy conjugate bit (``torch.resolve_conj``)."""
    return _tensor(input, "resolve_conj")


def resolve_neg(input) -> Tensor:
    """``input`` itself: polyten never sets a lazy negative bit (``torch.resolve_neg``)."""
    return _tensor(input, "resolve_neg")


def is_conj(input) -> bool:
    """Always ``False``: polyten's ``conj`` materialises its result (``torch.is_conj``)."""
    _tensor(input, "is_conj")
    return False


def is_neg(input) -> bool:
    """Always ``False``: polyten has no lazy negation (``torch.is_neg``)."""
    _tensor(input, "is_neg")
    return False


def is_same_size(input, other) -> bool:
    """Whether the two tensors have the same shape (``torch.is_same_size``)."""
    return tuple(_tensor(input, "is_same_size").shape) == \
        tuple(_tensor(other, "is_same_size", "other").shape)


def detach(input) -> Tensor:
    """``input.detach()`` (``torch.detach``): the same memory, outside the autograd graph."""
    return _tensor(input, "detach").detach()


def narrow_copy(input, dim, start, length) -> Tensor:
    """A copy of ``input.narrow(dim, start, length)`` (``torch.narrow_copy``)."""
    return _tensor(input, "narrow_copy").narrow(dim, start, length).clone()


def _sizes(op: str, split_sizes, x: Tensor, dim) -> list:
    if isinstance(split_sizes, Tensor):
        split_sizes = split_sizes.tolist()
    if not isinstance(split_sizes, (list, tuple)):
        raise TypeError(f"{op}: split_sizes must be a list of ints, got {describe(split_sizes)}")
    sizes = [operator.index(s) for s in split_sizes]
    d = normalize_dim(dim, x.ndim, op)
    if any(s < 0 for s in sizes) or builtins.sum(sizes) != x.shape[d]:
        raise ValueError(f"{op}: split_sizes must be non-negative and sum exactly to "
                         f"{x.shape[d]} (input's size at dim {d}), got {list(sizes)}")
    return sizes


def split_with_sizes(input, split_sizes, dim=0) -> tuple:
    """Views of ``input`` along ``dim`` with the given sizes, which must sum to that dim's
    size (``torch.split_with_sizes``)."""
    x = _tensor(input, "split_with_sizes")
    return tuple(_pt().split(x, _sizes("split_with_sizes", split_sizes, x, dim), dim))


def unsafe_split_with_sizes(input, split_sizes, dim=0) -> tuple:
    """:func:`split_with_sizes` (``torch.unsafe_split_with_sizes``: the same values; polyten
    records in-place writes to the pieces as to any view)."""
    x = _tensor(input, "unsafe_split_with_sizes")
    return tuple(_pt().split(x, _sizes("unsafe_split_with_sizes", split_sizes, x, dim), dim))


def unsafe_split(input, split_size, dim=0) -> tuple:
    """``torch.split`` (``torch.unsafe_split``; see :func:`unsafe_split_with_sizes`)."""
    return tuple(_pt().split(_tensor(input, "unsafe_split"), split_size, dim))


def unsafe_chunk(input, chunks, dim=0) -> tuple:
    """``torch.chunk`` (``torch.unsafe_chunk``; see :func:`unsafe_split_with_sizes`)."""
    return tuple(_pt().chunk(_tensor(input, "unsafe_chunk"), chunks, dim))


def _sum_to_size(self, *size) -> Tensor:
    """Sum this tensor down to ``size``, which must be expandable to its shape
    (``Tensor.sum_to_size``; the reverse of ``expand``)."""
    x = _tensor(self, "sum_to_size", "self")
    size = shape_tuple(size, "sum_to_size")
    shape = tuple(x.shape)
    lead = len(shape) - len(size)
    if lead < 0 or any(s not in (1, n) for s, n in zip(size, shape[lead:])):
        raise ValueError(f"sum_to_size: size {size} is not expandable to the tensor's shape "
                         f"{shape}")
    out = x.sum(dim=tuple(range(lead))) if lead else x
    dims = tuple(i for i, s in enumerate(size) if s == 1 and shape[lead + i] != 1)
    if dims:
        out = out.sum(dim=dims, keepdim=True)
    return out


def _resize_(self, *sizes, memory_format=None) -> Tensor:
    """Give this tensor the shape ``sizes`` in place (``Tensor.resize_``).

    Its elements, read in row-major order, fill the new shape in row-major order (torch's
    reinterpretation of a contiguous tensor's storage; a non-contiguous tensor is read in its
    logical order).  Elements past the old ones are filled with zeros (torch leaves them
    uninitialised).  Shrinking a contiguous tensor keeps its memory; growing allocates.  As in
    torch, tensors that require grad can't be resized.
    """
    x = _tensor(self, "resize_", "self")
    size = shape_tuple(sizes, "resize_")
    if x.requires_grad:
        raise RuntimeError(f"resize_: cannot resize a tensor that requires grad "
                           f"({describe(x)}); resize x.detach() or a clone")
    pt = _pt()
    n = math.prod(size)
    with _no_grad():
        flat = x.detach().reshape(-1)
        have = flat.shape[0]
        if n <= have:
            new = flat[:n].reshape(size)
        else:
            new = pt.cat([flat, pt.zeros(n - have, dtype=x.dtype, device=x.device)]).reshape(
                size)
    x._data = new._data
    bump_version(x)
    return x


def resize_as_(input, the_template, *, memory_format=None) -> Tensor:
    """``input.resize_(the_template.shape)`` (``torch.resize_as_``; see ``Tensor.resize_``)."""
    _tensor(input, "resize_as_")
    t = _tensor(the_template, "resize_as_", "the_template")
    return _resize_(input, tuple(t.shape))


def _cov_method(self, *, correction=1, fweights=None, aweights=None) -> Tensor:
    """The covariance matrix of this tensor's rows (variables) over its columns
    (observations): :func:`polyten.cov` (``Tensor.cov``)."""
    return _pt().cov(self, correction=correction, fweights=fweights, aweights=aweights)


def _corrcoef_method(self) -> Tensor:
    """Pearson's correlation coefficients of this tensor's rows: :func:`polyten.corrcoef`
    (``Tensor.corrcoef``)."""
    return _pt().corrcoef(self)


def matrix_exp(A) -> Tensor:
    """The matrix exponential of (a batch of) square matrices (``torch.matrix_exp``;
    :func:`polyten.linalg.matrix_exp`)."""
    return _pt().linalg.matrix_exp(_tensor(A, "matrix_exp", "A"))


# =============================================================================================
# 4. Legacy linear algebra
# =============================================================================================
def _matrix(op: str, A, name: str = "A", square: bool = False) -> Tensor:
    _tensor(A, op, name)
    if A.ndim < 2:
        raise ValueError(f"{op}: {name} must be a (batch of) matrix with at least 2 dims, got "
                         f"shape {tuple(A.shape)}")
    if not (A.dtype.is_floating_point or A.dtype.is_complex):
        raise TypeError(f"{op}: {name} must be floating point or complex, got "
                        f"{A.dtype.name}; cast it, e.g. {name}.double()")
    if square and A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{op}: {name} must be a (batch of) square matrix, got shape "
                         f"{tuple(A.shape)}")
    return A


def qr(input, some=True):
    """``(Q, R)`` with ``input = Q R`` (``torch.qr``): ``some=True`` gives the reduced
    factors (``linalg.qr(mode='reduced')``), ``False`` the complete ones."""
    A = _matrix("qr", input, "input")
    return _pt().linalg.qr(A, mode="reduced" if some else "complete")


def svd(input, some=True, compute_uv=True):
    """``(U, S, V)`` with ``input = U diag(S) V^H`` (``torch.svd``; note ``V``, not
    :func:`polyten.linalg.svd`'s ``Vh``).

    ``some=True`` gives the reduced factors.  ``compute_uv=False`` computes only ``S`` and
    returns zero-filled ``U`` ``(*, m, m)`` and ``V`` ``(*, n, n)``, as torch.  Differentiable
    through :func:`polyten.linalg.svd`.
    """
    pt = _pt()
    A = _matrix("svd", input, "input")
    if not compute_uv:
        S = pt.linalg.svdvals(A)
        batch = tuple(A.shape[:-2])
        m, n = A.shape[-2], A.shape[-1]
        U = pt.zeros(batch + (m, m), dtype=A.dtype, device=A.device)
        V = pt.zeros(batch + (n, n), dtype=A.dtype, device=A.device)
        return SVDResult(U, S, V)
    U, S, Vh = pt.linalg.svd(A, full_matrices=not some)
    return SVDResult(U, S, Vh.mH)


def cholesky(input, upper=False) -> Tensor:
    """The Cholesky factor of Hermitian positive-definite matrices (``torch.cholesky``):
    lower ``L`` with ``A = L L^H``, or upper ``U`` with ``A = U^H U``."""
    A = _matrix("cholesky", input, "input", square=True)
    return _pt().linalg.cholesky(A, upper=_bool(upper))


def lu(A, pivot=True, get_infos=False):
    """``(LU, pivots)`` or ``(LU, pivots, infos)`` (``torch.lu``): the packed LU factorisation
    of :func:`polyten.linalg.lu_factor_ex`, pivots int32 and 1-based (LAPACK's, as torch).

    A singular matrix is factored without error; ``infos`` (int32, one per matrix) is the
    1-based index of the first zero on ``U``'s diagonal, or 0.  ``pivot=False`` factors
    without row swaps (torch offers it on CUDA only; polyten on every backend).
    """
    A = _matrix("lu", A)
    LU, piv, info = _pt().linalg.lu_factor_ex(A, pivot=_bool(pivot))
    if get_infos:
        return LUWithInfoResult(LU, piv, info)
    return LU, piv


def _check_pivots(op: str, LU: Tensor, pivots) -> Tensor:
    _tensor(pivots, op, "LU_pivots")
    k = builtins.min(LU.shape[-2], LU.shape[-1])
    want = tuple(LU.shape[:-2]) + (k,)
    if pivots.dtype is not _dt.int32 or tuple(pivots.shape) != want:
        raise ValueError(f"{op}: LU_pivots must be int32 of shape {want} (as torch.lu returns "
                         f"for LU_data of shape {tuple(LU.shape)}), got {pivots.dtype.name} "
                         f"{tuple(pivots.shape)}")
    return pivots


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    """``(P, L, U)`` from :func:`lu`'s packed factorisation (``torch.lu_unpack``), with
    ``A = P L U``: ``P`` ``(*, m, m)``, ``L`` ``(*, m, k)`` unit lower, ``U`` ``(*, k, n)``
    upper, ``k = min(m, n)``.  A part not asked for (``unpack_data`` / ``unpack_pivots``
    False) is an empty tensor, as torch.  ``L`` and ``U`` differentiate with respect to
    ``LU_data``."""
    from .linalg_more import _perm_matrix, _unpack
    op = "lu_unpack"
    pt = _pt()
    LU = _matrix(op, LU_data, "LU_data")
    piv = _check_pivots(op, LU, LU_pivots)
    empty = pt.zeros(0, dtype=LU.dtype, device=LU.device)
    if unpack_pivots:
        m = LU.shape[-2]
        if piv.numel() and _bool(((piv < 1) | (piv > m)).any()):
            raise ValueError(f"{op}: LU_pivots must be in [1, {m}] (1-based row indices)")
        P = _perm_matrix(piv, m, LU.dtype)
    else:
        P = empty
    if unpack_data:
        L, U = _unpack(LU)
    else:
        L, U = empty, empty.clone()
    return LUUnpackResult(P, L, U)


def lu_solve(b, LU_data, LU_pivots) -> Tensor:
    """The solution ``X`` of ``A X = b`` from :func:`lu`'s factorisation of ``A``
    (``torch.lu_solve``; :func:`polyten.linalg.lu_solve` with the arguments reordered)."""
    op = "lu_solve"
    B = _matrix(op, b, "b")
    LU = _matrix(op, LU_data, "LU_data", square=True)
    piv = _check_pivots(op, LU, LU_pivots)
    if B.shape[-2] != LU.shape[-1]:
        raise ValueError(f"{op}: b of shape {tuple(B.shape)} must have {LU.shape[-1]} rows to "
                         f"match LU_data of shape {tuple(LU.shape)}")
    return _pt().linalg.lu_solve(LU, piv, B)


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):
    """``(solution, cloned_coefficient)`` (``torch.triangular_solve``): the solution ``X`` of
    ``A X = b`` (``transpose=True``: ``A^T X = b``) for triangular ``A``, reading only its
    ``upper`` (or lower) triangle, with a unit diagonal if ``unitriangular``; and a copy of
    ``A`` broadcast to the batch shape.  Batch dims broadcast."""
    pt = _pt()
    op = "triangular_solve"
    B = _matrix(op, b, "b")
    M = _matrix(op, A, "A", square=True)
    if B.shape[-2] != M.shape[-1]:
        raise ValueError(f"{op}: b of shape {tuple(B.shape)} must have {M.shape[-1]} rows to "
                         f"match A of shape {tuple(M.shape)}")
    if B.dtype is not M.dtype:
        raise TypeError(f"{op}: b and A must have the same dtype, got {B.dtype.name} and "
                        f"{M.dtype.name}")
    batch = tuple(pt.broadcast_shapes(tuple(B.shape[:-2]), tuple(M.shape[:-2])))
    coeff = M.mT if transpose else M
    sol = pt.linalg.solve_triangular(coeff, B, upper=_bool(upper) != _bool(transpose),
                                     unitriangular=_bool(unitriangular))
    cloned = M.expand(batch + tuple(M.shape[-2:])).clone()
    return TriangularSolveResult(sol, cloned)


def nuclear_norm(input, dim=None, keepdim=False) -> Tensor:
    """The nuclear norm (sum of singular values) over the two dims ``dim`` (the last two by
    default) (``torch.nuclear_norm``; ``nuclear_norm(input, keepdim)`` is accepted too)."""
    if isinstance(dim, _bool):
        dim, keepdim = None, dim
    A = _matrix("nuclear_norm", input, "input")
    dims = (-2, -1) if dim is None else tuple(dim)
    if len(dims) != 2:
        raise ValueError(f"nuclear_norm: dim must name two dims, got {dim!r}")
    return _pt().linalg.matrix_norm(A, "nuc", dim=dims, keepdim=_bool(keepdim))


def frobenius_norm(input, dim, keepdim=False) -> Tensor:
    """The Frobenius norm ``sqrt(sum |x|^2)`` over one or two dims (``torch.frobenius_norm``;
    ``dim`` is required, as in torch)."""
    x = _tensor(input, "frobenius_norm")
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        raise TypeError(f"frobenius_norm: input must be floating point or complex, got "
                        f"{x.dtype.name}")
    dims = (dim,) if isinstance(dim, _int) else tuple(dim)
    if not 1 <= len(dims) <= 2:
        raise ValueError(f"frobenius_norm: dim must name one or two dims, got {dim!r}")
    return _pt().linalg.vector_norm(x, 2, dim=dims, keepdim=_bool(keepdim))


def _lu_method(self, pivot=True, get_infos=False):
    return lu(self, pivot, get_infos)


def _lu_solve_method(self, LU_data, LU_pivots):
    return lu_solve(self, LU_data, LU_pivots)


def _triangular_solve_method(self, A, upper=True, transpose=False, unitriangular=False):
    return triangular_solve(self, A, upper, transpose, unitriangular)


# =============================================================================================
# 5. Sampling, histogramdd, empty_strided, frombuffer
# =============================================================================================
def _refuse_if(op: str, bad: Tensor, message: str) -> None:
    if bad.numel() and _bool(bad.any()):
        raise ValueError(f"{op}: {message}")


def _binomial_inversion(n, q, todo):
    """Binomial(n, q) draws where ``todo`` (q <= 1/2, n q < 10): the number of geometric
    waiting times (trials up to a success) that fit in n trials."""
    pt = _pt()
    shape = tuple(n.shape)
    lq = pt.log1p(-pt.where(todo, q, pt.full_like(q, 0.5)))
    total = pt.zeros_like(n)
    k = pt.zeros_like(n)
    while _bool(todo.any()):
        u = pt.rand(shape, dtype=n.dtype, device=n.device)
        g = pt.ceil(pt.log1p(-u) / lq).clamp(min=1)
        total = total + g
        more = todo & (total <= n)
        k = pt.where(more, k + 1, k)
        todo = more
    return k


def _binomial_btrs(n, q, todo):
    """Binomial(n, q) draws where ``todo`` (q <= 1/2, n q >= 10): Hormann's transformed
    rejection with squeeze (BTRS, 1993), redrawing only what was rejected."""
    pt = _pt()
    shape = tuple(n.shape)
    q = pt.where(todo, q, pt.full_like(q, 0.5))
    n = pt.where(todo, n, pt.full_like(n, 40.0))
    spq = pt.sqrt(n * q * (1 - q))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * q
    c = n * q + 0.5
    alpha = (2.83 + 5.1 / b) * spq
    vr = 0.92 - 4.2 / b
    m = pt.floor((n + 1) * q)
    h = pt.lgamma(m + 1) + pt.lgamma(n - m + 1)
    lpq = pt.log(q / (1 - q))
    out = pt.zeros_like(n)
    while _bool(todo.any()):
        u = pt.rand(shape, dtype=n.dtype, device=n.device) - 0.5
        v = pt.rand(shape, dtype=n.dtype, device=n.device)
        us = 0.5 - u.abs()
        k = pt.floor((2 * a / us + b) * u + c)
        valid = (k >= 0) & (k <= n)
        quick = (us >= 0.07) & (v <= vr)
        ks = pt.where(valid, k, pt.zeros_like(k))
        bound = h - pt.lgamma(ks + 1) - pt.lgamma(n - ks + 1) + (ks - m) * lpq
        slow = pt.log(v * alpha / (a / (us * us) + b)) <= bound
        accept = todo & valid & (quick | slow)
        out = pt.where(accept, k, out)
        todo = todo & ~accept
    return out


@_takes_generator
def binomial(count, prob, generator=None) -> Tensor:
    """Binomial draws: the number of successes in ``count`` trials of probability ``prob``,
    elementwise (``torch.binomial``).

    ``count`` and ``prob`` are floating tensors of one dtype (broadcast together); the result
    has that dtype.  Counts must be >= 0 and probabilities in [0, 1] (checked; torch returns
    garbage).  Below a mean of 10 the draws count geometric waiting times (inversion), above
    it they use Hormann's BTRS rejection sampler; both are exact.  Not differentiable.
    """
    op = "binomial"
    pt = _pt()
    c = _tensor(count, op, "count")
    p = _tensor(prob, op, "prob")
    if not c.dtype.is_floating_point:
        raise TypeError(f"{op}: count must be a floating tensor, got {c.dtype.name}; cast it, "
                        f"e.g. count.float()")
    if p.dtype is not c.dtype:
        raise TypeError(f"{op}: prob must have count's dtype {c.dtype.name}, got "
                        f"{p.dtype.name}")
    shape = tuple(pt.broadcast_shapes(tuple(c.shape), tuple(p.shape)))
    with _no_grad():
        n = c.detach().to(_dt.float64).expand(shape)
        q0 = p.detach().to(_dt.float64).expand(shape)
        _refuse_if(op, ~((n >= 0) & (n < math.inf)), "count must be finite and >= 0")
        _refuse_if(op, ~((q0 >= 0) & (q0 <= 1)), "prob must be in [0, 1] (and not NaN)")
        flip = q0 > 0.5
        q = pt.where(flip, 1 - q0, q0)
        n = pt.floor(n)
        small = n * q < 10
        active = (n > 0) & (q > 0)
        out = pt.zeros(shape, dtype=_dt.float64, device=c.device)
        if _bool((active & small).any()):
            out = pt.where(small, _binomial_inversion(n, q, active & small), out)
        big = active & ~small
        if _bool(big.any()):
            out = pt.where(big, _binomial_btrs(n, q, big), out)
        out = pt.where(flip, n - out, out)
        return out.to(c.dtype)


@_takes_generator
def poisson(input, generator=None) -> Tensor:
    """Poisson draws with rates ``input`` (``torch.poisson``): one per element, of
    ``input``'s floating dtype.  Rates must be finite and >= 0.  As in torch, the result
    carries a zero gradient to ``input``."""
    op = "poisson"
    x = _tensor(input, op)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: the rates must be a floating tensor, got {x.dtype.name}")
    from ..distributions.gamma import _poisson_sample
    with _no_grad():
        rate = x.detach()
        rate = rate.to(_dt.float32) if rate.dtype in _dt.LOW_PRECISION else rate
        _refuse_if(op, ~((rate >= 0) & (rate < math.inf)), "invalid Poisson rate: rates must "
                   "be finite and >= 0")
        out = _poisson_sample(rate).to(x.dtype)
    if _requires_grad(x) and _grad_on():
        return _ZeroGrad.apply(x, out)
    return out


def histogramdd(input, bins, *, range=None, weight=None, density=False):  # noqa: A002
    """A D-dimensional histogram of the points ``input`` ``(..., D)`` (``torch.histogramdd``):
    ``(hist, bin_edges)``, ``hist`` of shape ``(bins_0, ..., bins_{D-1})`` and a tuple of ``D``
    edge tensors.

    Parameters
    ----------
    input : Tensor
        Floating point, ``(..., D)``: the leading dims are flattened into points.
    bins : int, sequence of int, or sequence of 1-D Tensor
        The bin count for every dim, one count per dim, or the increasing edges per dim.
        Bins are half-open ``[a, b)`` but the last, ``[a, b]``; points outside are dropped.
    range : sequence of float, optional
        ``[lo_0, hi_0, lo_1, hi_1, ...]`` for counts (default: the data's range per dim;
        ``[0, 1]`` for no points; a zero-width range is widened by 1/2 on each side).
    weight : Tensor, optional
        One weight per point (``input.shape[:-1]``), summed instead of counts.
    density : bool
        Normalise so that the histogram integrates to 1.
    """
    op = "histogramdd"
    pt = _pt()
    x = _tensor(input, op)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype.name}")
    if x.ndim < 1:
        raise ValueError(f"{op}: input must be (..., D), got a 0-d tensor")
    D = x.shape[-1]
    pts = x.reshape(-1, D)
    N = pts.shape[0]
    if isinstance(bins, (list, tuple)) and bins and all(isinstance(e, Tensor) for e in bins):
        if len(bins) != D:
            raise ValueError(f"{op}: {len(bins)} edge tensors given for {D}-dimensional points")
        if range is not None:
            raise ValueError(f"{op}: range can't be given with bin edges")
        edges = []
        for d, e in enumerate(bins):
            if e.ndim != 1 or e.shape[0] < 1:
                raise ValueError(f"{op}: the edges for dim {d} must be a non-empty 1-D tensor, "
                                 f"got shape {tuple(e.shape)}")
            e = e.to(x.dtype)
            if e.shape[0] > 1 and _bool((e[1:] < e[:-1]).any()):
                raise ValueError(f"{op}: the edges for dim {d} must be increasing")
            edges.append(e)
    else:
        if isinstance(bins, (list, tuple)):
            counts = [operator.index(b) for b in bins]
            if len(counts) != D:
                raise ValueError(f"{op}: {len(counts)} bin counts given for {D}-dimensional "
                                 f"points")
        else:
            counts = [operator.index(bins)] * D
        if any(b <= 0 for b in counts):
            raise ValueError(f"{op}: bin counts must be positive, got {counts}")
        if range is not None:
            r = [_float(v) for v in range]
            if len(r) != 2 * D:
                raise ValueError(f"{op}: range must have 2 * D = {2 * D} values, got {len(r)}")
        elif N:
            lo = pts.detach().amin(dim=0).tolist()
            hi = pts.detach().amax(dim=0).tolist()
            r = [v for pair in zip(lo, hi) for v in pair]
        else:
            r = [0.0, 1.0] * D
        edges = []
        for d in builtins.range(D):
            lo, hi = r[2 * d], r[2 * d + 1]
            if lo > hi:
                raise ValueError(f"{op}: range for dim {d} must have min <= max, got "
                                 f"[{lo}, {hi}]")
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{op}: range [{lo}, {hi}] for dim {d} is not finite")
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            edges.append(pt.linspace(lo, hi, counts[d] + 1, dtype=x.dtype, device=x.device))
    nb = [e.shape[0] - 1 for e in edges]
    if weight is not None:
        w = _tensor(weight, op, "weight")
        if tuple(w.shape) != tuple(x.shape[:-1]):
            raise ValueError(f"{op}: weight must have shape {tuple(x.shape[:-1])} (one per "
                             f"point), got {tuple(w.shape)}")
        w = w.reshape(-1).to(x.dtype)
    else:
        w = pt.ones(N, dtype=x.dtype, device=x.device)
    total = math.prod(nb)
    if total == 0:
        return HistogramddResult(pt.zeros(tuple(nb), dtype=x.dtype, device=x.device),
                                 tuple(edges))
    inside = pt.ones(N, dtype=_dt.bool, device=x.device)
    flat = pt.zeros(N, dtype=_dt.int64, device=x.device)
    for d, e in enumerate(edges):
        col = pts[:, d].detach()
        inside = inside & (col >= e[0]) & (col <= e[-1])
        pos = (pt.searchsorted(e, col.contiguous(), right=True) - 1).clamp(0, nb[d] - 1)
        flat = flat * nb[d] + pos
    hist = pt.zeros(total, dtype=x.dtype, device=x.device).index_add(
        0, pt.where(inside, flat, pt.zeros_like(flat)), pt.where(inside, w, pt.zeros_like(w)))
    hist = hist.reshape(tuple(nb))
    if density:
        vol = None
        for d, e in enumerate(edges):
            width = (e[1:] - e[:-1]).reshape((1,) * d + (-1,) + (1,) * (D - 1 - d))
            vol = width if vol is None else vol * width
        hist = hist / (hist.sum() * vol)
    return HistogramddResult(hist, tuple(edges))


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False,
                  pin_memory=False) -> Tensor:
    """An uninitialised tensor of shape ``size`` (``torch.empty_strided``).

    polyten tensors cannot be given arbitrary strides (the backend contract has no
    ``as_strided``): ``stride`` is checked (one non-negative entry per dim) and then ignored;
    the result is C-contiguous, as :func:`polyten.empty`'s.
    """
    op = "empty_strided"
    shape = shape_tuple((size,), op)
    if isinstance(stride, Tensor):
        stride = stride.tolist()
    if not isinstance(stride, (list, tuple)) or len(stride) != len(shape):
        raise ValueError(f"{op}: stride must have one entry per dim of size {shape}, got "
                         f"{stride!r}")
    if any(operator.index(s) < 0 for s in stride):
        raise ValueError(f"{op}: strides must be non-negative, got {tuple(stride)}")
    t = _pt().empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)
    return t.pin_memory() if pin_memory else t


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False) -> Tensor:
    """A 1-D cpu tensor over an object implementing the buffer protocol (``bytes``,
    ``bytearray``, ``array.array``, ``memoryview``, ...), as ``torch.frombuffer``.

    The tensor shares the buffer's memory (writes show through both ways when the buffer is
    writable; a read-only buffer gives a read-only tensor).  ``count`` elements of ``dtype``
    are read from byte ``offset`` on (``-1``: up to the end of the buffer).
    """
    import numpy
    op = "frombuffer"
    pt = _pt()
    dt = _dt.to_dtype(dtype)
    try:
        mv = memoryview(buffer)
    except TypeError:
        raise TypeError(f"{op}: expected an object implementing the buffer protocol, got "
                        f"{describe(buffer)}") from None
    nbytes = mv.nbytes
    count, offset = operator.index(count), operator.index(offset)
    if offset < 0 or (nbytes and offset >= nbytes):
        raise ValueError(f"{op}: offset must be in [0, {nbytes - 1}] for a buffer of {nbytes} "
                         f"bytes, got {offset}")
    if count == 0 or count < -1:
        raise ValueError(f"{op}: count must be positive or -1, got {count}")
    if nbytes == 0:
        raise ValueError(f"{op}: the buffer is empty")
    avail = nbytes - offset
    if count == -1:
        if avail % dt.itemsize:
            raise ValueError(f"{op}: the buffer's {avail} bytes from offset {offset} are not a "
                             f"multiple of {dt.name}'s {dt.itemsize} bytes; give count")
        count = avail // dt.itemsize
    elif count * dt.itemsize > avail:
        raise ValueError(f"{op}: {count} {dt.name} elements need {count * dt.itemsize} bytes "
                         f"but only {avail} are left from offset {offset}")
    host = pt.empty(0, dtype=dt, device="cpu").numpy().dtype
    arr = numpy.frombuffer(mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv,
                           dtype=host, count=count, offset=offset)
    t = pt.from_numpy(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


# =============================================================================================
# Tensor methods
# =============================================================================================
TENSOR_METHODS = {}
for _n, _op in _COMPARE.items():
    TENSOR_METHODS[f"{_n}_"] = _nondiff_inplace(_n, _op, 1)
for _n, _k in _LOGICAL.items():
    TENSOR_METHODS[f"{_n}_"] = _nondiff_inplace(_n, _n, _k)
for _n in _GENERIC:
    TENSOR_METHODS[f"{_n}_"] = _renamed(f"{_n}_", _inplace_generic(_n, _graph_result(_lazy(_n))))
TENSOR_METHODS.update({
    "swapaxes_": _swap_inplace("swapaxes_"), "swapdims_": _swap_inplace("swapdims_"),
    "fill_diagonal_": _fill_diagonal_, "put_": _put_, "put": _put_method,
    "cauchy_": cauchy_, "geometric_": geometric_, "log_normal_": log_normal_,
    # small methods
    "cov": _cov_method, "corrcoef": _corrcoef_method,
    "angle": angle, "conj_physical": conj_physical, "conj_physical_": conj_physical_,
    "resolve_conj": resolve_conj, "resolve_neg": resolve_neg, "is_conj": is_conj,
    "is_neg": is_neg, "is_same_size": is_same_size, "narrow_copy": narrow_copy,
    "split_with_sizes": split_with_sizes, "unsafe_chunk": unsafe_chunk,
    "unsafe_split": unsafe_split, "unsafe_split_with_sizes": unsafe_split_with_sizes,
    "sum_to_size": _sum_to_size, "resize_": _resize_,
    "resize_as_": resize_as_,
    "matrix_exp": matrix_exp,
    # legacy linear algebra
    "qr": qr, "svd": svd, "cholesky": cholesky, "lu": _lu_method, "lu_solve": _lu_solve_method,
    "triangular_solve": _triangular_solve_method, "orgqr": orgqr,
})
del _n, _op, _k
