"""Parametrisation of the conformance tests: op x dtype cases for the backend under test."""

from __future__ import annotations

import pytest

from polyten.dispatch.optable import OPS

from polyten_conformance import opdb
from polyten_conformance.gradients import GRAD_DTYPE, has_float_inputs
from polyten_conformance.plugin import MARKER, backend_name, load_backend, wanted
from polyten_conformance.promotion import DTYPE_NAMES, kind
from polyten_conformance.runner import Conformance


def mark(op=None, area=None, tier=None, kernel=None):
    """The marker the plugin reads: which op / area / tier a test belongs to."""
    return getattr(pytest.mark, MARKER)(op=op, area=area, tier=tier, kernel=kernel)


def _meta(info):
    return {"op": info.name, "area": info.area, "tier": info.tier, "kernel": info.optable}


def op_mark(info):
    return mark(**_meta(info))


def preferred_dtype(info, dtypes):
    for d in ("float32", "float64", "int64"):
        if d in info.dtypes and d in dtypes:
            return d
    for d in info.dtypes:
        if d in dtypes:
            return d
    return None


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if not any(n in names for n in ("value_case", "reject_case", "error_op", "method_op",
                                    "alias_case", "kernel_name", "dtype_name", "dtype_pair",
                                    "scalar_case", "float_dtype", "grad_op", "nograd_op")):
        return
    be = load_backend(metafunc.config)
    dtypes = set(be.dtypes)
    config = metafunc.config
    # ops outside --polyten-ops / -tier / -area are not even generated (fast subset runs)
    infos = [o for o in opdb.OPDB.values() if wanted(config, _meta(o))]
    names_of = {o.name for o in infos}
    if "value_case" in names:
        metafunc.parametrize("value_case", [
            pytest.param((o, d), id=f"{o.name}-{d}", marks=op_mark(o))
            for o in infos for d in o.dtypes if d in dtypes])
    if "reject_case" in names:
        metafunc.parametrize("reject_case", [
            pytest.param((o, d), id=f"{o.name}-{d}", marks=op_mark(o))
            for o in infos for d in o.rejects if d in dtypes])
    if "error_op" in names:
        metafunc.parametrize("error_op", [
            pytest.param(o, id=o.name, marks=op_mark(o))
            for o in infos if o.errors is not None])
    if "method_op" in names:
        metafunc.parametrize("method_op", [
            pytest.param((o, preferred_dtype(o, dtypes)), id=f"{o.name}-Tensor.{o.method}",
                         marks=op_mark(o))
            for o in infos if o.method and preferred_dtype(o, dtypes)])
    if "alias_case" in names:
        metafunc.parametrize("alias_case", [
            pytest.param((opdb.OPDB[n], a, preferred_dtype(opdb.OPDB[n], dtypes)),
                         id=f"{n}-{a if isinstance(a, str) else a[0]}",
                         marks=op_mark(opdb.OPDB[n]))
            for n, al in opdb.ALIASES.items() for a in al
            if n in names_of and preferred_dtype(opdb.OPDB[n], dtypes)])
    if "grad_op" in names or "nograd_op" in names:
        # gradient tests are their own area: --polyten-area gradients selects them all,
        # --polyten-ops selects an op's gradient tests together with its other tests
        def grad_meta(o):
            return {**_meta(o), "area": "gradients"}

        cases = [o for o in opdb.OPDB.values() if wanted(config, grad_meta(o))
                 and GRAD_DTYPE in o.dtypes and GRAD_DTYPE in dtypes]
        if "grad_op" in names:
            metafunc.parametrize("grad_op", [
                pytest.param(o, id=o.name, marks=mark(**grad_meta(o)))
                for o in cases if o.differentiable])
        if "nograd_op" in names:
            metafunc.parametrize("nograd_op", [
                pytest.param(o, id=o.name, marks=mark(**grad_meta(o)))
                for o in cases if not o.differentiable and has_float_inputs(o)])
    if "kernel_name" in names:
        metafunc.parametrize("kernel_name", [
            pytest.param(n, id=n, marks=mark(op=n, area="kernels", tier=o.tier, kernel=n))
            for n, o in OPS.items() if o.kind == "primitive"
            and wanted(config, {"op": n, "area": "kernels", "tier": o.tier, "kernel": n})])
    ordered = [d for d in _DTYPE_ORDER if d in dtypes]
    if "dtype_name" in names:
        metafunc.parametrize("dtype_name", ordered)
    if "float_dtype" in names:
        metafunc.parametrize("float_dtype", [d for d in ordered if kind(d) == "f"])
    if "dtype_pair" in names:
        metafunc.parametrize("dtype_pair", [(a, b) for a in ordered for b in ordered],
                             ids=[f"{a}-{b}" for a in ordered for b in ordered])
    if "scalar_case" in names:
        cases = [(d, s) for d in ordered for s in (True, 3, 2.5, 1.5j)]
        metafunc.parametrize("scalar_case", cases,
                             ids=[f"{d}-{type(s).__name__}" for d, s in cases])


_DTYPE_ORDER = list(DTYPE_NAMES)


@pytest.fixture(scope="session", autouse=True)
def _ieee_float32():
    """The suite checks float32 results against float32's error bounds, so it runs with
    float32 products and convolutions computed in float32 (``polyten.backends.cudnn.allow_tf32``
    is True by default, as in PyTorch); ``test_precision`` checks the reduced-precision modes
    themselves.  The user's settings come back afterwards."""
    import polyten as pt
    before = (pt.backends.cudnn.allow_tf32, pt.get_float32_matmul_precision())
    pt.backends.cudnn.allow_tf32 = False
    pt.set_float32_matmul_precision("highest")
    yield
    pt.backends.cudnn.allow_tf32 = before[0]
    pt.set_float32_matmul_precision(before[1])


@pytest.fixture(autouse=True)
def _no_leftover_value_checks():
    """Each test starts with no queued value check and reads its own at the end (a backend
    that checks values asynchronously, ``polyten.dispatch.checks``): a failing check a test
    left pending would otherwise fail the next test's first host read with an error that is
    not its own."""
    from polyten.dispatch import checks
    checks.discard()
    yield
    try:
        checks.flush()
    except Exception as exc:  # noqa: BLE001 -- any op's error, reported as this test's
        pytest.fail(f"an asynchronous value check of this test failed after it ended (the "
                    f"test never read the result): {type(exc).__name__}: {exc}",
                    pytrace=False)


@pytest.fixture
def conf(request):
    """The backend under test and the shared checks (see polyten_conformance.runner)."""
    return Conformance(backend_name(request.config))


@pytest.fixture
def backend_obj(request):
    return load_backend(request.config)
