"""The fallback policy (error / warn / silent, global and per backend, $POLYTEN_FALLBACK),
its counters, kernel validation (wrong dtype or shape named) and the capability manifest."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import polyten
from polyten.dispatch import (FallbackWarning, KernelContractError, KernelNotFoundError,
                              dispatcher, fallback_counts, fallback_policy, manifest,
                              reset_fallback_counts, set_fallback_policy, set_validation)

from conftest import cpu_clone
from test_plugins import run_py


@pytest.fixture(autouse=True)
def _clean_policy():
    dispatcher._POLICY.clear()
    dispatcher._POLICY[None] = "error"
    reset_fallback_counts()
    yield
    dispatcher._POLICY.clear()
    reset_fallback_counts()
    set_validation(False)


def _erf_ref(v):
    return np.array([math.erf(t) for t in np.ravel(v)]).reshape(np.shape(v))


def test_error_is_the_default_and_names_op_backend_and_the_policy():
    with cpu_clone("noerf", drop=("erf",)):
        x = polyten.tensor([0.5, -1.0], device="noerf")
        with pytest.raises(KernelNotFoundError) as ei:
            polyten.erf(x)
        msg = str(ei.value)
        assert "erf" in msg and "'noerf'" in msg and "set_fallback_policy('warn'" in msg
    assert fallback_counts() == {}


def test_warn_runs_on_cpu_copies_back_warns_once_and_counts():
    host_calls = []

    def from_host(array, device_index):
        host_calls.append(device_index)
        return np.asarray(array)

    with cpu_clone("noerf", drop=("erf",), from_host=from_host):
        set_fallback_policy("warn", backend="noerf")
        assert fallback_policy("noerf") == "warn" and fallback_policy() == "error"
        v = np.array([[0.25, -1.5, 3.0]], dtype="float64")
        x = polyten.tensor(v, device="noerf")
        with pytest.warns(FallbackWarning, match=r"erf: backend 'noerf' has no kernel.*cpu"):
            y = polyten.erf(x)
        assert y.device.type == "noerf" and y.dtype == polyten.float64
        np.testing.assert_allclose(y.numpy(), _erf_ref(v), rtol=1e-12)
        assert host_calls  # the result was copied back through the backend's from_host
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second call does not warn again
            polyten.erf(x * 2)
        assert fallback_counts() == {"noerf": {"erf": 2}}


def test_silent_counts_without_warning_and_global_vs_per_backend():
    with cpu_clone("noexp", drop=("exp",)):
        x = polyten.tensor([0.0, 1.0], device="noexp")
        set_fallback_policy("silent")  # global
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_allclose(polyten.exp(x).numpy(), np.exp([0.0, 1.0]))
        assert fallback_counts()["noexp"]["exp"] == 1
        set_fallback_policy("error", backend="noexp")  # the backend's own policy wins
        with pytest.raises(KernelNotFoundError, match="exp"):
            polyten.exp(x)
        set_fallback_policy(None, backend="noexp")  # back to the global one
        assert fallback_policy("noexp") == "silent"
        polyten.exp(x)
        assert fallback_counts()["noexp"]["exp"] == 2


def test_fallback_of_creation_and_multi_output_ops():
    with cpu_clone("lean", drop=("arange", "sort")):
        set_fallback_policy("silent", backend="lean")
        r = polyten.arange(5, device="lean")
        assert r.device.type == "lean" and r.tolist() == [0, 1, 2, 3, 4]
        vals, idx = polyten.sort(polyten.tensor([3.0, 1.0, 2.0], device="lean"))
        assert vals.tolist() == [1.0, 2.0, 3.0] and idx.tolist() == [1, 2, 0]
        assert vals.device.type == idx.device.type == "lean"
        assert fallback_counts()["lean"] == {"arange": 1, "sort": 1}


def test_in_place_writes_never_fall_back():
    with cpu_clone("nosetitem", drop=("setitem",)):
        set_fallback_policy("silent", backend="nosetitem")
        x = polyten.zeros(3, device="nosetitem")
        with pytest.raises(KernelNotFoundError, match="setitem"):
            x[0] = 1.0


def test_bad_policy_is_refused():
    with pytest.raises(ValueError, match="error, warn, silent.*'loud'"):
        set_fallback_policy("loud")
    with pytest.raises(TypeError, match="backend name"):
        set_fallback_policy("warn", backend=3)


def test_environment_variable_sets_the_global_policy():
    code = """
        import warnings, polyten
        from conftest import cpu_clone
        from polyten.dispatch import fallback_counts, fallback_policy
        with cpu_clone('noerf', drop=('erf',)):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter('always')
                polyten.erf(polyten.ones(2, device='noerf'))
            print(fallback_policy(), fallback_counts(), len(w))
    """
    import os
    tests = os.path.dirname(__file__)
    r = run_py(code, env={"POLYTEN_FALLBACK": "warn", "PYTHONPATH": tests}, cwd=tests)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "warn {'noerf': {'erf': 1}} 1"
    r = run_py(code, env={"POLYTEN_FALLBACK": "sometimes", "PYTHONPATH": tests}, cwd=tests)
    assert r.returncode != 0 and "$POLYTEN_FALLBACK" in r.stderr and "sometimes" in r.stderr


# -- kernel validation -------------------------------------------------------------------
def test_validation_names_a_kernel_with_the_wrong_dtype_or_shape():
    with cpu_clone("liar", mul=lambda x, y: np.asarray(x * y, dtype="float64"),
                   sub=lambda x, y: np.asarray(x - y).reshape(-1)):
        a = polyten.ones((2, 3), dtype=polyten.float32, device="liar")
        set_validation(True)
        with pytest.raises(KernelContractError,
                           match=r"kernel 'mul' of backend 'liar'.*float64 data for a float32"):
            a * a
        with pytest.raises(KernelContractError,
                           match=r"kernel 'sub' of backend 'liar'.*shape is \(6,\), "
                                 r"expected \(2, 3\)"):
            a - a
        set_validation(False)
        assert (a * a).shape == (2, 3)  # off: the kernel is called unchecked again


def test_validation_names_the_kernel_inside_a_default():
    # square's default calls mul: the broken mul is named even though the user called square
    with cpu_clone("liar2", drop=("square",), mul=lambda x, y: np.asarray(x * y, "float64")):
        set_validation(True)
        with pytest.raises(KernelContractError, match="kernel 'mul' of backend 'liar2'"):
            polyten.square(polyten.ones(2, dtype=polyten.float32, device="liar2"))


# -- the capability manifest ---------------------------------------------------------------
def test_manifest_tells_native_default_fallback_and_missing_apart():
    with cpu_clone("partial", drop=("exp", "expm1", "linalg_inv", "sin", "cos")) as dev:
        m = manifest(dev.backend)
        assert m["add"].source == "native" and "float32" in m["add"].dtypes
        assert m["cos"].source == "missing" and "sin" in m["cos"].reason  # default needs sin
        assert m["exp"].source == "missing" and m["exp"].dtypes == ()
        assert m["tanh"].source == "native"
        assert m["linalg_inv"].source == "missing" and m["linalg_inv"].tier == "linalg"
        set_fallback_policy("warn", backend="partial")
        m = manifest(dev.backend)
        assert m["exp"].source == "fallback" and "cpu" in m["exp"].reason
        assert m["expm1"].source == "default"  # its default's exp now runs on the cpu
        rows = {b.name: b for b in polyten.backends()}
        assert rows["partial"].capabilities["sin"].source == "fallback"
