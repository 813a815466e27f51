"""The cuda backend's kernel table, built against an array module ``cp`` (CuPy).

Importing this module does not import CuPy: :func:`build` takes the module, so that the tests
can check the table against the op table with a NumPy-backed stand-in.

What is shared and what is not: the cpu backend's NumPy-API kernels (``polyten_cpu.kernels``)
are instantiated with ``xp=cp``; this module replaces

* transfers (``to_host``/``from_host``/``from_dlpack``, pinned staging), ``erf``
  (``cupyx.scipy.special``) and ``matmul`` (float16 straight to cuBLAS, which accumulates in
  float32, instead of the NumPy path's round trip through float32; every product of
  matrices as one strided-batched GEMM, :mod:`polyten_cuda.gemm`) and ``linear`` and its
  backward (direct GEMMs, the bias the forward GEMM's C, so the result is rounded once, as
  PyTorch's ``addmm``: :mod:`polyten_cuda.linear`);
* ``setitem`` / ``inplace``, which refuse broadcast views (CuPy has no read-only flag);
* kernels whose shared version reads a device value on the host (``pow`` with an integer
  exponent array, ``nll_loss``, ``cross_entropy`` and their backward): here every
  data-dependent choice is made on the device, so no kernel synchronises the stream;
* ``sigmoid``, ``softmax``, ``log_softmax``, ``nll_loss``, ``cross_entropy``, the activation
  composites ``gelu``, ``silu``, ``leaky_relu``, ``elu``, ``softplus`` and the backward of
  ``sigmoid``, ``tanh``, ``relu``, ``softmax``, ``log_softmax``, ``nll_loss``,
  ``cross_entropy``, ``gelu``, ``silu``, ``leaky_relu``, ``elu``, ``softplus``, ``erf`` with
  the fused CUDA kernels of :mod:`polyten_cuda.fused` (one ``ElementwiseKernel`` per
  activation and per activation backward).

Every kernel is wrapped once: a float16 / bfloat16 call that CuPy refuses (no loop for the
dtype) runs again in float32 (:mod:`polyten_cuda.half_retry`), and CuPy's out-of-memory error
becomes polyten's ``OutOfMemoryError`` with the figures (:func:`_out_of_memory`).

Devices: creation, random and transfer kernels run under ``cupy.cuda.Device(device_index)``;
with more than one GPU every other kernel runs on the device of its first array operand (the
core has checked that all operands share one device), so ops on ``cuda:1`` work whatever the
current device is.
"""

from __future__ import annotations

import collections

import numpy as np

from polyten_cpu.kernels import all_backward_kernels, all_kernels
from polyten_cpu.kernels._util import full_signed, low_precision, negative_zero

from . import atomic_add as _atomic_add
from . import attention as _attention
from . import bfloat16 as _bf16
from .half_retry import float32_retry, translating
from . import conv as _conv
from . import ctc as _ctc
from . import deterministic as _deterministic
from . import multi_tensor as _mt
from . import fused
from . import linear as _linear
from . import lu as _lu
from . import gemm as _gemm
from . import scatter_reduce as _scatter_reduce
from .rows import Rows

# creation, random and transfer kernels receive ``device_index`` as their last argument
ON_DEVICE = ("full", "empty", "arange", "linspace", "logspace", "eye", "asarray", "from_host",
             "from_dlpack", "random_uniform", "random_normal", "random_integers",
             "random_permutation", "from_pinned", "dropout_mask")
# kernels without an array operand (nothing to follow to a device)
NO_OPERAND = ON_DEVICE + ("pin_memory", "is_pinned")


def _guarded(cp, fn):
    Device = cp.cuda.Device

    def kernel(*args):
        index = args[-1]
        if index is None:
            return fn(*args)
        with Device(index):
            return fn(*args)
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel


def _out_of_memory(cp):
    """``(CuPy's out-of-memory error, make)``: ``make(kernel name, error)`` is polyten's
    :class:`~polyten.dispatch.errors.OutOfMemoryError` (a RuntimeError and a MemoryError, as
    ``torch.cuda.OutOfMemoryError``) naming the kernel, the request, what the pool and the
    device hold, and what to do; CuPy's error becomes its ``__cause__``."""
    return cp.cuda.memory.OutOfMemoryError, lambda name, e: _oom_error(cp, name, e)


def _oom_error(cp, name, e):
    from polyten.dispatch.errors import out_of_memory
    dev = cp.cuda.runtime.getDevice()
    pool = cp.get_default_memory_pool()
    try:
        free, total = cp.cuda.runtime.memGetInfo()
    except Exception:  # the figures are a courtesy: never hide the error behind another
        free = total = None
    return out_of_memory(f"{name} (polyten_cuda kernel)", f"cuda:{dev}",
                         getattr(e, "_size", None), pool.used_bytes(), pool.total_bytes(),
                         free, total, pool.get_limit())


def guard_out_of_memory(cp, table) -> dict:
    """Every entry of ``table`` (the fused optimizer steps) raising polyten's out-of-memory
    error (:func:`_out_of_memory`); the kernel tables get it from :func:`float32_retry`."""
    oom = _out_of_memory(cp)
    return {name: translating(name, fn, oom) for name, fn in table.items()}


def _first_array(nd, args):
    for a in args:
        if a.__class__ is nd:
            return a
        if isinstance(a, (list, tuple)):
            for b in a:
                if b.__class__ is nd:
                    return b
    return None


def _follow_operand(cp, fn, backward=False):
    """Run ``fn`` on the device of its first array operand (multi-GPU only)."""
    nd = cp.ndarray
    current = cp.cuda.runtime.getDevice
    Device = cp.cuda.Device

    def kernel(*args):
        a = _first_array(nd, args[0] if backward else args)
        if a is None:
            return fn(*args)
        dev = a.device.id
        if dev == current():
            return fn(*args)
        with Device(dev):
            return fn(*args)
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel


class _InFlight:
    """Pinned host buffers whose asynchronous host-to-device copy may still be running.

    CuPy returns a freed pinned buffer to its pool at once, so a buffer must stay referenced
    until the copy reading it has finished: each copy records an event, and buffers are
    released once their event is done (checked on every new copy, so the list stays short).
    """

    def __init__(self):
        self._items = collections.deque()

    def add(self, event, buffer) -> None:
        items = self._items
        items.append((event, buffer))
        while items and items[0][0].done:
            items.popleft()


def _transfer_kernels(cp) -> dict:
    import numpy as np

    inflight = _InFlight()

    def to_host(x):
        return cp.asnumpy(x)  # waits for the stream: the user asked for the values

    def from_host(array, device_index):
        if array.ndim == 0 and array.dtype.kind in "fc":
            v = array.item()
            if negative_zero(v):  # CuPy copies a 0-d host array with fill(): a memset for 0
                return full_signed(cp, (), v, array.dtype)
        return cp.asarray(array)

    def from_dlpack(obj, device_index):
        return cp.from_dlpack(obj)

    def pin_memory(array):
        if array.size == 0:
            return array
        import cupyx
        out = cupyx.empty_pinned(array.shape, dtype=array.dtype)
        np.copyto(out, array, casting="no")
        return out

    def from_pinned(array, device_index):
        out = cp.empty(array.shape, dtype=array.dtype)
        if array.size == 0:
            return out
        src = np.ascontiguousarray(array)   # pin_memory results already are: no copy
        stream = cp.cuda.get_current_stream()
        out.set(src, stream=stream)         # DMA from page-locked memory, asynchronous
        event = cp.cuda.Event(block=False, disable_timing=True)
        event.record(stream)
        inflight.add(event, src)
        return out

    def is_pinned(array):
        # pin_memory's arrays are views of CuPy pinned allocations: follow the base chain
        base = array
        while base is not None:
            if isinstance(base, cp.cuda.PinnedMemoryPointer):
                return True
            base = getattr(base, "base", None)
        return False

    return {"to_host": to_host, "from_host": from_host, "from_dlpack": from_dlpack,
            "pin_memory": pin_memory, "from_pinned": from_pinned, "is_pinned": is_pinned}


def _sync_free_kernels(cp, shared, bmm, bf16) -> dict:
    """Replacements for shared kernels that read a device value on the host (``pow``) or
    that CuPy and cuBLAS do better (``erf``, ``matmul``)."""
    nd = cp.ndarray
    power, where, square = cp.power, cp.where, cp.square

    def pow_(x, y):
        # scalars stay kernel arguments (cp.asarray of a Python number is a host-to-device
        # copy); the core refuses a negative Python int exponent on an integer tensor
        if y.__class__ is not nd:
            if y == 2 and y.__class__ is not bool and x.dtype.kind in "fiu":
                # x * x, rounded once, as the cpu kernel and torch's pow(x, 2); CUDA's pow
                # is not correctly rounded and CuPy has no special case for 2
                return square(x)
            r = power(x, y)
            return r if r.dtype == x.dtype else r.astype(x.dtype)
        if x.__class__ is not nd:
            x = cp.full((), x, dtype=y.dtype)  # filled by a kernel: no host-to-device copy
        if y.dtype.kind != "i":
            return power(x, y)
        # integer ** negative integer, as PyTorch (1 and -1 keep their magnitude, others 0),
        # decided per element on the device instead of `if (y < 0).any()` on the host
        neg = y < 0
        r = power(x, where(neg, 0, y))
        odd = (y % 2) != 0
        special = where(x == 1, 1, where(x == -1, where(odd, -1, 1), 0))
        return where(neg, special, r).astype(r.dtype, copy=False)

    batched = bmm.data_types if bmm is not None else frozenset()
    shared_matmul = shared["matmul"]

    def matmul(x, y):
        if x.ndim > 1 and y.ndim > 1 and x.dtype in batched:
            # one (strided-batched) GEMM, no copies of transposed operands, and none of
            # cupy.matmul's host work before its GEMM
            r = bmm(x, y)
            if r is not None:
                return r
        if bf16 is not None and x.dtype == bf16:  # float32: no bfloat16 GEMM here
            return shared_matmul(x, y)
        # cuBLAS multiplies float16 with float32 accumulation (tensor cores): the shared
        # kernel's round trip through float32 (for NumPy, which has no float16 BLAS) would
        # cost two casts and a float32 product
        r = x @ y
        return r if r.__class__ is nd else cp.asarray(r)

    def erf(x):
        from cupyx.scipy.special import erf as _erf
        r = _erf(x)
        return r if r.dtype == x.dtype else r.astype(x.dtype)

    return {"pow": pow_, "erf": erf, "matmul": matmul}


def _floating(cp, bf16) -> frozenset:
    """The storage dtypes of ``fused_src``'s ``T``: float16, bfloat16 (where CuPy has it;
    its kind is "V", not "f"), float32 and float64."""
    return frozenset(cp.dtype(n) for n in ("float16", "float32", "float64")) | (
        frozenset() if bf16 is None else frozenset((bf16,)))


def _erf(cp, ew, fallback, bf16):
    """``erf`` of a real floating array: one launch of ``fused_src``'s kernel in the
    computation type (float16 / bfloat16 in float32, rounded once); anything else to
    ``fallback`` (cupyx.scipy.special)."""
    kernel = ew["erf"]
    own = _floating(cp, bf16)

    def erf(x):
        return kernel(x) if x.dtype in own else fallback(x)
    return erf


def _gamma(cp, ew, shared, bf16):
    """``lgamma``, ``digamma`` and ``polygamma`` of real floating arrays: one launch of
    ``fused_src``'s kernel each (float16 / bfloat16 computed in float32, rounded once); the
    shared NumPy-API kernels (the defaults' formulas on CuPy) for anything else."""
    from polyten.dispatch.defaults import _polygamma_scale
    own = _floating(cp, bf16)
    lg, dg, pg = ew["lgamma"], ew["digamma"], ew["polygamma"]
    s_lg, s_dg, s_pg = shared["lgamma"], shared["digamma"], shared["polygamma"]

    def lgamma(x):
        return lg(x) if x.dtype in own else s_lg(x)

    def digamma(x):
        return dg(x) if x.dtype in own else s_dg(x)

    def polygamma(x, n):
        if x.dtype not in own:
            return s_pg(x, n)
        if n == 0:
            return dg(x)
        return pg(x, n, _polygamma_scale(n))
    return {"lgamma": lgamma, "digamma": digamma, "polygamma": polygamma}


def _same_dtype_route(cp, own, kernel, fallback, name):
    """``fn(x, y)``: ``kernel`` where both operands are arrays of one dtype in ``own``, or one
    is and the other a number (a 0-d array of that dtype: a fill, no host-to-device copy;
    rounded to the dtype, as NumPy takes it); ``fallback`` otherwise."""
    nd = cp.ndarray

    def route(x, y):
        if x.__class__ is nd:
            if x.dtype in own:
                if y.__class__ is not nd:
                    return kernel(x, full_signed(cp, (), y, x.dtype))
                if y.dtype == x.dtype:
                    return kernel(x, y)
        elif y.__class__ is nd and y.dtype in own:
            return kernel(full_signed(cp, (), x, y.dtype), y)
        return fallback(x, y)
    route.__name__ = name
    return route


def _python_divmod(cp, ew, shared, bf16):
    """``floor_divide`` and ``remainder`` of floating arrays as Python's ``//`` and ``%``
    (``fused_src``'s kernels: CuPy's float ones are ``floor(x / y)``-based); integers and
    mixed dtypes to the ``shared`` kernels."""
    own = _floating(cp, bf16)
    return {name: _same_dtype_route(cp, own, ew[name], shared[name], name)
            for name in ("floor_divide", "remainder")}


def _int64_fmod(cp, ew, shared):
    """``fmod`` of int64 exactly (``fused_src``'s ``int_fmod``): CuPy's integer fmod goes
    through double, wrong past 2**53.  Narrower integers are exact in double and keep
    CuPy's."""
    own = frozenset((cp.dtype("int64"),))
    return _same_dtype_route(cp, own, ew["int_fmod"], shared, "fmod")


def _first_nan_wins(cp, kernels):
    """``argmax`` / ``argmin`` / ``max_dim`` / ``min_dim`` of floating arrays answer the
    first NaN's index, as NumPy and torch.  CuPy's reduction prefers a NaN but, where two
    meet, keeps the left operand of its combine (``my_argmax_float``), which in its tree over
    threads can hold the later one (NaNs at 1 and 256 of a row of 512: thread 0 holds 256).
    Three launches more (isnan, the bool argmax, any), all on the device."""
    def first_nan(x, i, dim, keepdim):
        if x.dtype.kind not in "fV" or x.ndim == 0 or x.size == 0:
            return i
        nan = cp.isnan(x) if x.dtype.kind != "V" else cp.isnan(x.astype("float32"))
        j = nan.argmax(axis=dim, keepdims=keepdim)  # bool: the first True (ties: lowest)
        return cp.where(nan.any(axis=dim, keepdims=keepdim), j, i)

    def index(name):
        shared = kernels[name]

        def arg(x, dim, keepdim):
            return first_nan(x, shared(x, dim, keepdim), dim, keepdim)
        arg.__name__ = name
        return arg

    def values_and_index(name):
        shared = kernels[name]

        def extreme(x, dim, keepdim):
            v, i = shared(x, dim, keepdim)
            return v, first_nan(x, i, dim, keepdim)
        extreme.__name__ = name
        return extreme

    return {"argmax": index("argmax"), "argmin": index("argmin"),
            "max_dim": values_and_index("max_dim"), "min_dim": values_and_index("min_dim")}


# CuPy 14.2's batch scan indexes its padded (rows, 2**k or 512 * m) buffer with 32-bit ints
# and gives wrong values, silently, past 2**32 elements (cupy/cupy#10268, fixed after 14.2):
# scans whose padded buffer would pass this many elements run in row blocks below it
SCAN_LIMIT = [2**31]


def _scan_padding(n: int) -> int:
    return 1 << (n - 1).bit_length() if n <= 512 else -(-n // 512) * 512


def _scans(cp, kernels):
    """``cumsum`` / ``cumprod`` as on the cpu: C-contiguous (CuPy's scan along a non-last
    axis returns a permuted view, and ``.view()`` of it failed), and in row blocks where
    CuPy's 32-bit indexing would overflow (see ``SCAN_LIMIT``)."""
    def make(name):
        shared = kernels[name]

        def scan(x, dim, dtype):
            if x.ndim > 1 and x.size:
                n = x.shape[dim]
                rows = x.size // n
                per = SCAN_LIMIT[0] // _scan_padding(n)
                if rows > per:
                    flat = cp.moveaxis(x, dim, -1)
                    shape = flat.shape
                    flat = flat.reshape(rows, n)
                    parts = [shared(flat[i:i + max(per, 1)], 1, dtype)
                             for i in range(0, rows, max(per, 1))]
                    r = cp.moveaxis(cp.concatenate(parts).reshape(shape), -1, dim)
                    return cp.ascontiguousarray(r)
            r = shared(x, dim, dtype)
            return r if r.flags.c_contiguous else cp.ascontiguousarray(r)
        scan.__name__ = name
        return scan

    return {"cumsum": make("cumsum"), "cumprod": make("cumprod")}


def _multinomial(cp, rng, ew, shared):
    """``multinomial``: with replacement, every row's samples in one search launch
    (``fused_src``'s ``multinomial_pick``) instead of the shared kernel's search per row (a
    batch of 64 rows was 64 launches); without replacement the shared kernel (one sort)."""
    f64 = cp.dtype("float64")

    def multinomial(x, num_samples, replacement):
        if not replacement or x.size == 0:
            return shared(x, num_samples, replacement)
        w = x.astype(f64, copy=False)
        squeeze = w.ndim == 1
        if squeeze:
            w = w[None, :]
        rows, n = w.shape
        cdf = cp.ascontiguousarray(cp.cumsum(w, axis=1))
        u = rng.gen.random((rows, num_samples))
        out = ew["multinomial_pick"](cdf, u, n, num_samples)
        return out[0] if squeeze else out
    return multinomial


def _searchsorted(cp, ew, shared):
    """``searchsorted`` with one sorted row per leading index: every row in one launch
    (``fused_src``'s ``searchsorted_rows``) instead of the shared kernel's search per row;
    1-D sequences and bfloat16 keep the shared kernel (CuPy's own search)."""
    native = frozenset(("bool", "int8", "uint8", "int16", "int32", "int64", "float16",
                        "float32", "float64"))

    def searchsorted(x, y, right):
        if x.ndim == 1 or x.dtype.name not in native or y.size == 0:
            return shared(x, y, right)
        if x.shape[-1] == 0:  # every value goes first (CuPy cannot reshape (-1, 0))
            return cp.zeros(y.shape, dtype="int64")
        n, m = x.shape[-1], y.shape[-1]
        xr = cp.ascontiguousarray(x).reshape(-1, n)
        yr = cp.ascontiguousarray(y).reshape(-1, m)
        return ew["searchsorted_rows"](xr, yr, n, m, bool(right)).reshape(y.shape)
    return searchsorted


def _segment_argmax(cp, ew):
    """``segment_argmax`` in one launch, a thread per (segment, column) (the shared kernel's
    ``ufunc.reduceat`` is NumPy's); bfloat16 is searched in float32 (exact)."""
    def segment_argmax(x, starts):
        n, d = x.shape
        m = starts.shape[0]
        if m == 0 or n == 0 or d == 0:
            return cp.zeros((m, d), dtype="int64")
        if x.dtype.name not in fused._FLOAT:  # the CUDA sources' storage types
            x = x.astype("float32")
        out = cp.empty((m, d), dtype="int64")
        return ew["segment_argmax"](cp.ascontiguousarray(x), cp.ascontiguousarray(starts),
                                    n, m, d, out)
    return segment_argmax


# unary ops whose in-place form (x.lgamma_()) the shared ``inplace`` would compute with the
# shared NumPy-API kernel -- on CuPy the defaults' formulas, split by branch with boolean
# masks (host reads) -- while this backend has one fused kernel for them
_OWN_INPLACE = ("lgamma", "digamma", "erf")


def _write_guards(cp, shared, own) -> dict:
    """``setitem`` / ``inplace`` refusing broadcast views (a zero stride over more than one
    element): NumPy marks them read-only and the core turns its ValueError into a message
    naming the user's call; CuPy has no read-only flag and would write several elements into
    one memory location.  The check reads only shapes and strides (host metadata).

    ``x[mask] = value`` with a boolean mask of ``x``'s shape and a number or a 0-d array
    (``masked_fill_``, ``x[x < 0] = 0``) is ``cupy.copyto(x, value, where=mask)``: CuPy's
    own boolean-mask assignment reads the number of true elements on the host (a wait for
    the GPU) and copies a number to the device first.

    ``own`` is the backend's kernel table, read at call time (it is completed after this
    runs): the in-place forms of ``_OWN_INPLACE`` ops write its kernels' results."""
    setitem, inplace = shared["setitem"], shared["inplace"]
    nd, copyto = cp.ndarray, cp.copyto
    scalars = (bool, int, float, complex)

    def check(x):
        if x.size == 0:  # nothing to alias
            return
        for n, s in zip(x.shape, x.strides):
            if s == 0 and n > 1:
                raise ValueError("assignment destination is read-only: a broadcast view whose "
                                 "elements share memory")

    may_share = cp.may_share_memory

    def apart(x, value):
        # CuPy copies a same-layout C-contiguous value with one cudaMemcpyAsync, which is
        # undefined for overlapping memory (x[1:] = x[:-1]); NumPy copies as if through a
        # buffer, and so does this
        if value.__class__ is nd and value.size and may_share(x, value):
            return value.copy()
        return value

    def guarded_setitem(x, key, value):
        check(x)
        value = apart(x, value)
        mask = key[0] if key.__class__ is tuple and len(key) == 1 else key
        if mask.__class__ is nd and mask.dtype.kind == "b" and mask.shape == x.shape and (
                value.__class__ in scalars or (value.__class__ is nd and value.ndim == 0)):
            copyto(x, value, casting="unsafe", where=mask)
            return None
        return setitem(x, key, value)

    def guarded_inplace(op, x, y):
        check(x)
        if op is None:  # a copy into x (the ufuncs copy overlapping inputs themselves)
            y = apart(x, y)
        elif y is None and op in _OWN_INPLACE:
            x[...] = own[op](x)
            return x
        return inplace(op, x, y)

    return {"setitem": guarded_setitem, "inplace": guarded_inplace}


def _switched(deterministic, ordered, fast):
    """A kernel that is ``ordered`` while ``deterministic[0]`` (polyten.use_deterministic_
    algorithms) and ``fast`` otherwise."""
    def kernel(*args):
        return (ordered if deterministic[0] else fast)(*args)
    kernel.__name__ = getattr(fast, "__name__", "kernel")
    return kernel


def _deterministic_kernels(cp, kernels, deterministic) -> dict:
    """``scatter_add`` summing, and ``scatter`` / ``setitem`` writing, repeated positions in
    source order while ``deterministic[0]`` (:mod:`polyten_cuda.deterministic`)."""
    add = _deterministic.make(cp, _mt.dtype_names(cp, _mt.C_TYPES), kernels["scatter_add"])
    scatter, setitem = _deterministic.make_writes(cp, kernels["scatter"], kernels["setitem"])
    return {name: _switched(deterministic, ordered, kernels[name])
            for name, ordered in (("scatter_add", add), ("scatter", scatter),
                                  ("setitem", setitem))}


def _radix_key(bits_key):
    """``key(a, zero)``: fused_src's ``radix_key`` of the float32 / float64 array ``a``, on its
    bits, as an array of ``a``'s dtype."""
    consts = {}
    for width in (32, 64):
        u = np.dtype(f"uint{width}")
        sign = 1 << (width - 1)
        mant = 23 if width == 32 else 52
        inf = (sign - 1) ^ ((1 << mant) - 1)  # exponent all ones, mantissa zero
        consts[width // 8] = (u, u.type(sign), u.type(inf), u.type(inf | (1 << (mant - 1))))

    def key(a, zero=True):
        u, sign, inf, nan = consts[a.dtype.itemsize]
        return bits_key(a.view(u), zero, sign, inf, nan).view(a.dtype)
    return key


def _nextafter(cp, ew, fallback):
    """``nextafter``: float32 on its bits (fused_src's ``nextafter_bits``: CUDA's nextafterf
    flushes subnormal results); other dtypes ``fallback``."""
    nd, f32, i32 = cp.ndarray, np.dtype("float32"), np.dtype("int32")
    kernel = ew["nextafter_bits"]
    mag, inf = np.int32(0x7FFFFFFF), np.int32(0x7F800000)

    def bits(v):
        return v.view(i32) if v.__class__ is nd else np.float32(v).view(np.int32)

    def nextafter(x, y):
        if (x.__class__ is nd and x.dtype == f32 and (y.__class__ is float or
                                                      y.__class__ is nd and y.dtype == f32)
                or x.__class__ is float and y.__class__ is nd and y.dtype == f32):
            return kernel(bits(x), bits(y), mag, inf).view(f32)
        return fallback(x, y)
    return nextafter


def _eig_kernel(cp, shared_eig):
    """``linalg_eig`` where CuPy has ``cupy.linalg.eig`` (CuPy 14, on cuSOLVER's ``Xgeev``),
    else ``None`` (the op is then missing on cuda, as the capability manifest says).  CuPy
    keeps eig even where the cuSOLVER it loads predates ``Xgeev`` (CUDA 12.6 update 2): its
    call then fails with CUSOLVER_STATUS_NOT_SUPPORTED, which this turns into an error that
    says so and what to do.  (cupyx's cuSOLVER availability table cannot tell: it lists only a
    few older routines and raises ValueError for the rest.)"""
    if not hasattr(getattr(cp, "linalg", None), "eig"):
        return None  # CuPy 13

    def linalg_eig(x, compute_v):
        try:
            return shared_eig(x, compute_v)
        except Exception as e:  # CuPy's CUSOLVERError has no common base to catch
            if "NOT_SUPPORTED" not in str(e):
                raise
            raise RuntimeError("linalg.eig on cuda needs cuSOLVER 11.7 (CUDA 12.6 update 2) "
                               "or newer, which has the general eigensolver Xgeev; this "
                               f"machine's cuSOLVER does not ({e}). Update the CUDA "
                               "toolkit / nvidia-cusolver wheel, or compute it on the cpu: "
                               "polyten.linalg.eig(A.cpu())") from None
    return linalg_eig


def build(cp, rng, native_dtype, device_count=1, conv_precision=None, deterministic=None):
    """``(kernels, backward_kernels, elementwise)`` of the cuda backend on array module ``cp``.

    ``elementwise`` holds the fused ``ElementwiseKernel`` objects by source name (the fused
    optimizer steps use them).  ``conv_precision``: the one-item list the backend's
    ``float32_conv_precision`` hook writes (see :func:`polyten_cuda.conv.conv_context`);
    ``deterministic``: the one-item list its ``deterministic_algorithms`` hook writes
    (True: ``scatter_add`` / ``scatter`` / ``setitem`` take repeated positions in source
    order, :mod:`polyten_cuda.deterministic`).
    """
    raw = _conv.raw_kernels(cp)  # one launch each instead of K + 1 (col2im) and 3 (im2col)
    bmm = _gemm.build(cp)
    rows = Rows(cp)
    conv_ctx = _conv.conv_context(cp, raw, bmm, conv_precision, rows)
    # CuPy's 1-D float sorts are radix sorts: the shared sort kernels order by this key
    radix_key = _radix_key(fused.elementwise(cp, "radix_key"))
    shared = all_kernels(cp, rng=rng, native_dtype=native_dtype, radix_key=radix_key,
                         **conv_ctx)
    shared_bw = all_backward_kernels(cp, **conv_ctx)
    kernels = dict(shared)
    backward = dict(shared_bw)
    kernels.update(_transfer_kernels(cp))
    eig = _eig_kernel(cp, kernels["linalg_eig"])
    if eig is None:
        # without cupy.linalg.eig the op is missing on cuda (the capability manifest says
        # so), rather than a host round trip through NumPy
        del kernels["linalg_eig"]
    else:
        kernels["linalg_eig"] = eig
    # cuSOLVER's blocked getrf for few large matrices (the shared kernel: ~10 launches a column)
    kernels["linalg_lu_factor"] = _lu.build(cp, kernels["linalg_lu_factor"])
    bf16 = _bf16.supported(cp)
    kernels.update(_sync_free_kernels(cp, shared, bmm, bf16))
    kernels.update(_write_guards(cp, shared, kernels))
    # cupy.add.at takes six dtypes: the others through one of them
    kernels["scatter_add"] = _atomic_add.any_dtype(cp, kernels["scatter_add"], bf16)
    # one launch of CAS loops, no host read (the op's default sorts and reads sizes)
    kernels["scatter_reduce"] = _scatter_reduce.build(cp, kernels, deterministic)
    # CTC's recursions: one block per sample, one launch each way (the shared kernel takes
    # about ten launches a frame)
    kernels["ctc_alpha"], backward["ctc_alpha"] = _ctc.build(cp, kernels["ctc_alpha"],
                                                             backward["ctc_alpha"])
    # one Philox launch instead of uniform, compare, cast and scale
    kernels["dropout_mask"] = (lambda shape, p, dtype, device_index:
                               rng.gen.dropout_mask(shape, p, dtype))
    kernels["dropout"] = lambda x, p: rng.gen.dropout(x, p)  # and x times that mask
    if bmm is not None:
        kernels["linear"], backward["linear"] = _linear.build(
            cp, bmm, rows, shared["linear"], shared_bw["linear"], low_precision(cp))
        sdpa = "scaled_dot_product_attention"
        kernels[sdpa], backward[sdpa] = _attention.build(cp, bmm, rows, shared[sdpa],
                                                         shared_bw[sdpa])
    fwd, bwd, ew = fused.build(cp, shared, shared_bw, rows)
    kernels.update(fwd)
    backward.update(bwd)
    kernels["multinomial"] = _multinomial(cp, rng, ew, shared["multinomial"])
    kernels["searchsorted"] = _searchsorted(cp, ew, shared["searchsorted"])
    kernels["segment_argmax"] = _segment_argmax(cp, ew)
    kernels["erf"] = _erf(cp, ew, kernels["erf"], bf16)
    kernels.update(_gamma(cp, ew, kernels, bf16))
    kernels.update(_python_divmod(cp, ew, kernels, bf16))
    kernels["fmod"] = _int64_fmod(cp, ew, kernels["fmod"])
    kernels["nextafter"] = _nextafter(cp, ew, kernels["nextafter"])
    kernels.update(_first_nan_wins(cp, kernels))
    kernels.update(_scans(cp, kernels))
    if bf16 is not None:
        kernels.update(_bf16.weak_floats(cp, kernels, bf16))
    if deterministic is not None:
        kernels.update(_deterministic_kernels(cp, kernels, deterministic))
    # where CuPy has no float16 / bfloat16 loop for a function a kernel calls: float32
    # (in the same wrapper, CuPy's out-of-memory error becomes polyten's)
    halves = (cp.dtype("float16"),) + (() if bf16 is None else (bf16,))
    oom = _out_of_memory(cp)
    kernels = float32_retry(kernels, halves, translate=oom)
    backward = float32_retry(backward, halves, backward=True, translate=oom)
    for name in ON_DEVICE:
        if name in kernels:
            kernels[name] = _guarded(cp, kernels[name])
    if device_count > 1:
        for name, fn in list(kernels.items()):
            if name not in NO_OPERAND:
                kernels[name] = _follow_operand(cp, fn)
        for name, fn in list(backward.items()):
            backward[name] = _follow_operand(cp, fn, backward=True)
    return kernels, backward, ew
