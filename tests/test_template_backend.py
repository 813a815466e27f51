"""The template backend (examples/polyten_template): installed next to the cpu backend, it
implements only the core tier and passes the whole conformance suite through polyten's
defaults; several backends side by side never mix; the backend guide's code is real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import polyten
from polyten.dispatch import DeviceMismatchError, backends, optable

from conftest import cpu_clone

# the defaults compute inf/nan on purpose (e.g. 1/x for the sign of -0.0); NumPy's warnings
# about that are silenced by the template for its users, but pytest resets warning filters
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "examples" / "polyten_template" / "polyten_template"


@pytest.fixture(scope="module")
def template():
    rows = {b.name: b for b in backends()}
    if "template" not in rows:
        pytest.fail("the template backend is not installed: pip install -e "
                    "examples/polyten_template (scripts/test.sh does it)")
    return rows["template"]


def test_template_is_an_installed_distribution_with_only_the_core_tier(template):
    assert template.distribution == "polyten-template" and template.available
    be = polyten.dispatch.get_backend_object("template")
    assert set(be.kernels) == set(optable.CORE_PRIMITIVES)
    assert len(optable.CORE_PRIMITIVES) <= 40
    lines = [ln for ln in (TEMPLATE / "backend.py").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) <= 130, len(lines)  # "as few lines as it can": keep it small


def test_template_passes_the_whole_conformance_suite(template, tmp_path):
    """``polyten conformance template`` (every area): nothing fails; what is missing is the
    optional tiers the template leaves out on purpose (random, linalg, complex, bitwise,
    fft) and the dtypes it does not store (complex, bfloat16)."""
    report = tmp_path / "template.json"
    r = subprocess.run([sys.executable, "-m", "polyten.cli", "conformance", "template",
                        "--report", str(report)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=600, env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY":
                                         str(tmp_path)})
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    data = json.loads(report.read_text())
    totals = data["totals"]
    assert totals["failed"] == 0 and totals["passed"] > 2000, totals
    # the summary table per tier is printed at the end
    assert re.search(r"core\s+elementwise\s+\d+\s+0\s+0", r.stdout), r.stdout[-3000:]
    optional = {"random", "linalg", "complex", "bitwise", "fft"}
    for m in data["missing"]:
        reason = m.get("reason", "")
        assert any(f"{t} tier" in reason or f"'{t}' tier" in reason for t in optional) or \
            re.search(r"does not store (complex(64|128)|bfloat16)", reason), m
    for area in ("models", "gradients", "promotion", "views", "transfer"):
        assert any(g["area"] == area and g["passed"] > 0 for g in data["groups"]), area


def test_backends_side_by_side_each_in_its_own_scope_and_never_mixed(template):
    with cpu_clone("inproc"):
        made = {}
        for name in ("template", "inproc", "cpu"):
            with polyten.backend(name):
                t = polyten.arange(6, dtype=polyten.float32).reshape(2, 3)
                made[name] = (t * 2 + 1).sum(dim=1)
            assert made[name].device.type == name
            assert made[name].tolist() == [9.0, 27.0]
        assert polyten.get_backend() == "cpu"
        for a, b in (("template", "inproc"), ("template", "cpu"), ("inproc", "cpu")):
            with pytest.raises(DeviceMismatchError, match=f"{a}.*{b}|{b}.*{a}"):
                made[a] + made[b]
            with pytest.raises(DeviceMismatchError, match="add"):
                polyten.add(made[a], made[b])
        # explicit moves are the way across
        moved = made["template"].to("inproc") + made["inproc"]
        assert moved.device.type == "inproc" and moved.tolist() == [18.0, 54.0]


def test_template_runs_composites_through_defaults_with_gradients(template):
    x = polyten.tensor(np.linspace(-2, 2, 7), dtype=polyten.float64, device="template",
                       requires_grad=True)
    y = polyten.logsumexp(polyten.tanh(x) * polyten.expm1(x), dim=0)
    y.backward()
    xv = np.linspace(-2, 2, 7)
    f = np.tanh(xv) * np.expm1(xv)
    assert y.item() == pytest.approx(np.log(np.exp(f).sum()), rel=1e-12)
    sm = np.exp(f) / np.exp(f).sum()
    df = (1 - np.tanh(xv) ** 2) * np.expm1(xv) + np.tanh(xv) * np.exp(xv)
    np.testing.assert_allclose(x.grad.numpy(), sm * df, rtol=1e-10)
    assert x.grad.device.type == "template"


def test_template_lacks_optional_tiers_with_a_clear_error(template):
    with pytest.raises(polyten.KernelNotFoundError, match="'random' tier is optional"):
        polyten.rand(3, device="template")


def test_a_dtype_the_backend_does_not_store_is_refused(template):
    """The template stores no complex dtype: a complex result is refused, naming the backend,
    the dtype and what it stores, instead of leaking arrays it cannot describe."""
    from polyten.dispatch import DtypeNotStoredError
    x = polyten.ones(2, device="template")
    for call in (lambda: x + 1.5j, lambda: x.to(polyten.complex64),
                 lambda: polyten.zeros(2, dtype=polyten.complex128, device="template")):
        with pytest.raises(DtypeNotStoredError,
                           match=r"backend 'template' does not store complex(64|128) "
                                 r"\(it stores bool, .*float64\).*\.to\('cpu'\)"):
            call()
    assert isinstance(DtypeNotStoredError("m"), TypeError)
    assert (x + 1.5).dtype == polyten.float32  # stored dtypes are unaffected


# -- the guide --------------------------------------------------------------------------------
def _code_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_writing_a_backend_guide_code_names_exist():
    """Every ``polyten.``/``polyten.dispatch`` name the guide's Python blocks use exists."""
    text = (ROOT / "docs" / "writing-a-backend.md").read_text()
    blocks = _code_blocks(text)
    assert len(blocks) >= 4
    names = set()
    for b in blocks:
        names |= set(re.findall(r"\bpolyten(?:\.[A-Za-z_][A-Za-z0-9_]*)+", b))
        for mod, paren, flat in re.findall(
                r"from (polyten[\w.]*) import (?:\(([^)]*)\)|([\w, ]+))", b):
            names |= {f"{mod}.{n.strip()}" for n in (paren or flat).split(",") if n.strip()}
    assert names
    import importlib
    for dotted in sorted(names):
        parts = dotted.split(".")
        obj = None
        for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for p in parts[i:]:
                assert hasattr(obj, p), f"docs/writing-a-backend.md uses {dotted}: no {p!r}"
                obj = getattr(obj, p)
            break
        assert obj is not None, dotted
    # the core-tier list in the guide is the op table's
    for name in optable.CORE_PRIMITIVES:
        assert f"`{name}`" in text, f"core primitive {name} is not listed in the guide"


def test_cli_verbose_shows_the_capability_manifest(template):
    r = subprocess.run([sys.executable, "-m", "polyten.cli", "backends", "--verbose"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    block = out.split("\ntemplate:")[1]
    assert "40/65 primitive kernels" in block.splitlines()[0]
    assert re.search(r"core\s+40\s+\d+\s+0\s+0", block), block
    # the six random primitives, dropout_mask, whose default draws with random_uniform, and
    # dropout, whose default draws dropout_mask
    assert re.search(r"random\s+0\s+0\s+0\s+8", block), block
    assert "missing: dropout [random]: its default needs dropout_mask" in block
    assert "missing: linalg_inv [linalg]: no kernel (linalg tier primitive)" in block
    assert "only some dtypes: bitwise_not (bool)" in block
    assert "fallback policy: error" in block
    cpu = out.split("\ncpu:")[1].split("\ntemplate:")[0]
    assert re.search(r"core\s+\d+\s+\d+\s+0\s+0", cpu) and "missing:" not in cpu


def test_models_area_catches_a_backend_whose_training_is_broken(tmp_path):
    """A backend whose fused linear backward returns zero gradients: the nn smoke tests fail
    with a message saying the network does not train."""
    script = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
import numpy as np
from conftest import make_cpu_clone
from polyten.dispatch import Backend, BackendSpec, hookimpl, register_plugin

def load():
    b = make_cpu_clone("frozen")
    zero = lambda g, i, o, p: tuple(None if a is None else np.zeros_like(a) for a in i)
    return Backend("frozen", b.kernels, dtypes=b.dtypes, native_dtype=b.native_dtype,
                   dtype_name=b.dtype_name, is_native=b.is_native, seed=b.seed,
                   backward_kernels={{"linear": zero}})

class P:
    @hookimpl
    def polyten_register_backends(self, register):
        register(BackendSpec("frozen", load=load))

register_plugin(P(), name="frozen")
import polyten_conformance
print("RC", polyten_conformance.run("frozen", area="models",
                                    report={str(tmp_path / 'r.json')!r}))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert "RC 1" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    data = json.loads((tmp_path / "r.json").read_text())
    fails = {f["test"]: f["message"] for f in data["failures"]}
    assert "does not train on backend 'frozen'" in fails["test_mlp_trains"]
    assert "test_checkpoint_round_trip" not in fails
