"""What a conformance test does with an OpInfo: run its samples, compare, explain failures.

The test functions in ``polyten_conformance/tests`` are thin: they pick an (op, dtype) case and
call :class:`Conformance` methods, which raise :class:`~harness.ConformanceFailure` with every
non-conforming sample's reproducer, or skip with a ``[missing]`` reason.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np

from . import harness as H
from . import promotion as P
from .harness import ConformanceFailure, Materialized, Sample
from .opinfo import MissingAPI, OpInfo

MAX_REPORTED = 3  # failing samples shown in full per test


class Conformance:
    """The backend under test plus the checks shared by every test."""

    def __init__(self, backend: str):
        import polyten
        self.pt = polyten
        self.backend = backend            # as given: "cpu", "cuda", "cuda:1"
        self.device = backend             # where the inputs are created
        self.device_type = backend.split(":")[0]  # what result tensors' device.type must be

    # -- lookups --------------------------------------------------------------------------
    def resolve(self, op: OpInfo) -> Callable:
        try:
            return op.resolve(self.pt)
        except MissingAPI as exc:
            H.missing(f"{op.name}: {exc}")

    def need(self, path: str):
        """A public polyten function / attribute the test needs, or a 'missing' skip."""
        obj = self.pt
        walked = "polyten"
        for part in path.split("."):
            if part == "Tensor":
                obj = self.pt.Tensor
                walked = "polyten.Tensor"
                continue
            if not hasattr(obj, part):
                H.missing(f"{walked}.{part} is not defined")
            obj = getattr(obj, part)
            walked += "." + part
        return obj

    # -- comparisons ------------------------------------------------------------------------
    def compare_any(self, out, ref, dtypes, tol="default") -> List[str]:
        if isinstance(ref, (tuple, list)):
            if not isinstance(out, (tuple, list)):
                return [f"expected a tuple of {len(ref)} tensors, got "
                        f"{type(out).__name__}"]
            if len(out) != len(ref):
                return [f"expected {len(ref)} results, got {len(out)}"]
            if not isinstance(dtypes, (tuple, list)):
                dtypes = [dtypes] * len(ref)
            problems = []
            for i, (o, r, d) in enumerate(zip(out, ref, dtypes)):
                problems += H.compare(o, r, d, self.device_type, tol, what=f"result[{i}]")
            return problems
        return H.compare(out, ref, dtypes, self.device_type, tol)

    def compare_tuple(self, out, ref, dtypes, exact_indices, index_pos, source, dim):
        """(values, indices) results: values exactly as the reference, indices by property."""
        if not isinstance(out, (tuple, list)) or len(out) != len(ref):
            return [f"expected a tuple of {len(ref)} tensors (values, indices), got "
                    f"{type(out).__name__}"]
        problems = []
        for i, (o, r, d) in enumerate(zip(out, ref, dtypes)):
            if i == index_pos:
                problems += self.compare_indices(o, r, source, dim, exact_indices,
                                                 what=f"result[{i}] (indices)")
            else:
                problems += H.compare(o, r, d, self.device_type, what=f"result[{i}] (values)")
        return problems

    def compare_indices(self, out, ref, source, dim, exact, what="indices") -> List[str]:
        """Indices are right if they pick the same values as the reference's (and are distinct
        along ``dim``); with ``exact`` (stable sorts) they must equal the reference."""
        if exact or source.ndim == 0:
            return H.compare(out, ref, "int64", self.device_type, what=what)
        problems = H.compare(out, np.zeros(np.shape(ref)), None, self.device_type, what=what)
        problems = [p for p in problems if "values differ" not in p]
        if problems:
            return problems
        if out.dtype.name != "int64":
            return [f"{what}: dtype is {out.dtype.name}, expected int64"]
        got = H.to_host(out)
        n = source.shape[dim]
        if got.size and (got.min() < 0 or got.max() >= n):
            return [f"{what}: indices out of range [0, {n}): {H.fmt_array(got)}"]
        picked = np.take_along_axis(source, got, axis=dim)
        want = np.take_along_axis(source, np.asarray(ref), axis=dim)
        same = (picked == want) | (_isnan(picked) & _isnan(want))
        if not np.all(same):
            return [f"{what}: the indices do not select the expected values\n"
                    f"    actual indices:   {H.fmt_array(got)}\n"
                    f"    a valid answer:   {H.fmt_array(ref)}"]
        srt = np.sort(got, axis=dim)
        if got.shape[dim] > 1 and np.any(np.diff(srt, axis=dim) == 0):
            return [f"{what}: an index repeats along dim {dim}: {H.fmt_array(got)}"]
        return []

    # -- running samples --------------------------------------------------------------------
    def run_sample(self, op: OpInfo, fn: Callable, sample: Sample, dtype: str,
                   call_code: Optional[Callable] = None):
        """``(problems, missing_reason, reproducer)`` for one sample."""
        try:
            mat = Materialized(self.pt, sample, self.device)
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                return [], why, ""
            return [f"building the inputs failed: {type(exc).__name__}: {exc}\n"
                    f"{H.short_traceback(exc)}"], None, ""
        args, kwargs = mat.call_args
        code = (call_code or op.call_code)(mat.args, mat.kwargs)
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                return [], why, ""
            return ([f"raised {type(exc).__name__}: {exc}\n{H.short_traceback(exc)}"],
                    None, self._repro(op, sample, dtype, mat, code))
        ref = op.reference(sample, dtype)
        expected = sample.extra.get("result") or op.expected_dtype(sample, dtype)
        if op.check is not None:
            problems = op.check(out, ref, sample, dtype, self)
        else:
            problems = self.compare_any(out, ref, expected, op.tol)
        if not problems:
            return [], None, ""
        return problems, None, self._repro(op, sample, dtype, mat, code, ref, expected)

    def _repro(self, op, sample, dtype, mat, code, ref=None, expected=None) -> str:
        lines = ["import numpy as np", "import polyten", f"polyten.set_backend({self.backend!r})"]
        lines += mat.lines
        if "\n" in code:
            lines += code.split("\n")
        else:
            lines.append(f"out = {code}")
        if ref is not None:
            lines.append("print(out)")
            if isinstance(ref, (tuple, list)):
                for i, r in enumerate(ref):
                    d = expected[i] if isinstance(expected, (tuple, list)) else expected
                    lines.append(f"# expected result[{i}]: {_fmt_ref(r, d)}")
            elif ref is not None:
                lines.append(f"# expected: {_fmt_ref(ref, expected)}")
        return "\n".join(lines)

    def run_samples(self, op: OpInfo, fn: Callable, dtype: str, samples: Sequence[Sample],
                    seed: int, title: str, call_code: Optional[Callable] = None) -> None:
        """Run every sample; raise one ConformanceFailure naming all that failed."""
        failures = []
        missing = []
        for i, s in enumerate(samples):
            problems, why, repro = self.run_sample(op, fn, s, dtype, call_code)
            if why:
                missing.append(why)
            elif problems:
                failures.append((i, s, problems, repro))
        if failures:
            raise ConformanceFailure(self._failure_text(op, dtype, seed, title, failures,
                                                        len(samples)))
        if missing:
            H.missing(f"{op.name}: {missing[0]}")

    def _failure_text(self, op, dtype, seed, title, failures, n) -> str:
        head = (f"{title}: {len(failures)} of {n} samples do not conform "
                f"(backend {self.backend!r}; polyten.{op.name} -> {op.kernel}; dtype {dtype}; "
                f"seed {seed})")
        parts = [head]
        for i, s, problems, repro in failures[:MAX_REPORTED]:
            parts.append(f"\n--- sample {i}: {s.describe()}")
            parts += ["  " + p.replace("\n", "\n  ") for p in problems]
            if repro:
                parts.append("  reproducer:\n" + _indent(repro, 4))
        if len(failures) > MAX_REPORTED:
            rest = ", ".join(f"{i} ({s.desc})" for i, s, _, _ in failures[MAX_REPORTED:])
            parts.append(f"\n... and samples {rest}")
        return "\n".join(parts)

    # -- error inputs -----------------------------------------------------------------------
    def check_raises(self, op: OpInfo, fn: Callable, es, call_code=None) -> Optional[str]:
        """None when the call raises as required; else what went wrong (with reproducer)."""
        try:
            mat = Materialized(self.pt, es, self.device)
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                H.missing(f"{op.name}: {why}")
            raise
        args, kwargs = mat.call_args
        code = (call_code or op.call_code)(mat.args, mat.kwargs)
        exc_names = " or ".join(e.__name__ for e in (es.exc if isinstance(es.exc, tuple)
                                                      else (es.exc,)))
        want = f"{exc_names} mentioning {', '.join(_words(m) for m in es.match)}" \
            if es.match else exc_names
        try:
            out = fn(*args, **kwargs)
            # a backend may check values asynchronously (polyten.dispatch.checks): its error
            # comes at the first host read of the result, which is where a user meets it
            _read_tensors(out)
        except es.exc as exc:
            why = H.is_missing_error(exc)  # KernelNotFoundError is a RuntimeError too
            if why:
                H.missing(f"{op.name}: {why}")
            msg = str(exc)
            lacking = [m for m in es.match if not _mentions(msg, m)]
            if not lacking:
                return None
            problem = (f"raised {type(exc).__name__} as expected, but the message does not "
                       f"mention {', '.join(_words(m) for m in lacking)}:\n    {msg}")
        except Exception as exc:
            why = H.is_missing_error(exc)
            if why:
                H.missing(f"{op.name}: {why}")
            problem = (f"raised {type(exc).__name__} instead of {exc_names}: {exc}\n"
                       f"{H.short_traceback(exc, 3)}")
        else:
            problem = f"did not raise; returned {_short(out)}"
        lines = ["import numpy as np", "import polyten",
                 f"polyten.set_backend({self.backend!r})"] + mat.lines
        lines += code.split("\n") if "\n" in code else [f"out = {code}"]
        lines.append(f"# expected: {want}")
        return (f"--- {es.desc}: expected {want}\n  {problem}\n  reproducer:\n"
                f"{_indent(chr(10).join(lines), 4)}")


def _read_tensors(obj) -> None:
    """Read every tensor in ``obj`` (nested tuples, lists, dicts) on the host."""
    if isinstance(obj, (list, tuple)):
        for o in obj:
            _read_tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            _read_tensors(o)
    elif hasattr(obj, "numpy") and hasattr(obj, "requires_grad"):
        obj.detach().numpy()


def _mentions(msg: str, m) -> bool:
    """``m`` is a word the message must contain, or a tuple of alternatives."""
    return any(w in msg for w in m) if isinstance(m, tuple) else m in msg


def _words(m) -> str:
    return " or ".join(repr(w) for w in m) if isinstance(m, tuple) else repr(m)


def _fmt_ref(r, dtype) -> str:
    """``float32 (2, 3): [[...]]`` -- the reference as the result should look."""
    r = np.asarray(r)
    shape = H._shape(r.shape)
    return f"{dtype} {shape}: {H.fmt_array(r, 300, suffix=False)}".replace("\n", "\n# ")


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line for line in text.split("\n"))


def _short(out) -> str:
    try:
        if hasattr(out, "shape") and hasattr(out, "dtype"):
            return f"a {out.dtype.name} tensor of shape {tuple(out.shape)}"
    except Exception:
        pass
    return f"{type(out).__name__} {out!r:.80}"


def _isnan(a):
    a = np.asarray(a)
    # by name: NumPy gives ml_dtypes' bfloat16 kind "V"
    return np.isnan(a) if P.kind(a.dtype.name) in "fc" else np.zeros(a.shape, dtype=bool)


def pick_reject_sample(op: OpInfo, dtype: str, rng) -> Optional[Sample]:
    """A plain sample (non-empty, at least 1-d) of ``dtype`` to check a dtype rejection."""
    if op.reject_sample is not None:
        return op.reject_sample(dtype, rng)
    samples = list(op.samples(dtype, rng))
    if samples and not any(a.role == "data" for s in samples for a in s.arrs()):
        return samples[0]  # creation ops: the dtype is an argument
    for s in samples:
        arrs = [a for a in s.arrs() if a.role == "data"]
        if arrs and all(a.value.ndim >= 1 and a.value.size > 0 for a in arrs) and \
                all(a.layout == "contiguous" for a in arrs):
            return s
    return None
