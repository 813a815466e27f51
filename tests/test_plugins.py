"""Plugin discovery and reporting: entry points, broken plugins, the allow-list, in-process
registration, and that ``import polyten`` stays light."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import polyten
from polyten.dispatch import (BackendSpec, BackendUnavailableError, PluginWarning,
                              UnknownBackendError, backends, hookimpl, plugin_errors,
                              register_plugin, unregister_plugin)
from polyten.dispatch import registry

from conftest import make_cpu_clone


def run_py(code: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=120)


def test_import_polyten_imports_no_array_library_and_no_plugin():
    r = run_py("""
        import sys, polyten
        bad = [m for m in ('numpy', 'cupy', 'torch', 'polyten_cpu', 'polyten_cuda')
               if m in sys.modules]
        print(bad)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_backends_lists_installed_plugins_with_distribution_and_reason():
    rows = {b.name: b for b in backends()}
    assert rows["cpu"].available and rows["cpu"].distribution == "polyten-cpu"
    assert rows["cpu"].version
    cuda = rows["cuda"]
    assert cuda.distribution == "polyten-cuda"
    try:
        import cupy  # noqa: F401  (only whether it imports)
        has_cupy = True
    except ImportError:
        has_cupy = False
    if not has_cupy:
        assert not cuda.available and "cupy is not installed" in cuda.reason


def test_unknown_backend_lists_installed_ones_and_reasons():
    with pytest.raises(UnknownBackendError) as ei:
        polyten.set_backend("nosuchbackend")
    msg = str(ei.value)
    assert "'nosuchbackend'" in msg and "cpu (polyten-cpu" in msg and "cuda" in msg


def test_unavailable_backend_error_says_why():
    info = {b.name: b for b in backends()}["cuda"]
    if info.available:
        pytest.skip("CUDA is available on this machine")
    with pytest.raises(BackendUnavailableError) as ei:
        polyten.set_backend("cuda")
    assert "unavailable" in str(ei.value) and info.reason in str(ei.value)
    with pytest.raises(BackendUnavailableError):
        polyten.ones(2).cuda()


class _Plugin:
    def __init__(self, fn):
        self.fn = fn

    @hookimpl
    def polyten_register_backends(self, register):
        self.fn(register)


def _register(fn, name):
    return register_plugin(_Plugin(fn), name=name)


def test_in_process_backend_is_usable_and_removable():
    name = _register(lambda reg: reg(BackendSpec("mini", load=lambda: make_cpu_clone("mini"))),
                     "test-mini")
    try:
        with polyten.backend("mini"):
            x = polyten.ones(3)
        assert x.device.type == "mini"
        assert (x + x).tolist() == [2.0, 2.0, 2.0]
        assert polyten.get_backend() == "cpu"
    finally:
        unregister_plugin(name)
    assert "mini" not in {b.name for b in backends()}


def test_a_hook_that_raises_is_reported_and_others_keep_working():
    def boom(reg):
        raise RuntimeError("kaboom")
    with pytest.warns(PluginWarning, match="kaboom"):
        name = _register(boom, "test-boom")
    try:
        assert any("kaboom" in e.message and e.plugin == "test-boom" for e in plugin_errors())
        assert (polyten.ones(2) + 1).tolist() == [2.0, 2.0]
    finally:
        unregister_plugin(name)


@pytest.mark.parametrize("bad, words", [
    (object(), "not a polyten.dispatch.BackendSpec"),
    (BackendSpec("Bad Name!", load=lambda: None), "names are lower-case"),
    (BackendSpec("cpu", load=lambda: None), "already provides"),
])
def test_invalid_registrations_are_reported(bad, words):
    with pytest.warns(PluginWarning, match=words.split()[0]):
        name = _register(lambda reg: reg(bad), "test-bad")
    try:
        assert any(words in e.message for e in plugin_errors())
        assert polyten.ones(1).device.type == "cpu"
    finally:
        unregister_plugin(name)


def test_kernel_for_unknown_op_is_reported_and_ignored():
    def load():
        return make_cpu_clone("weird", frobnicate=lambda x: x)
    name = _register(lambda reg: reg(BackendSpec("weird", load=load)), "test-weird")
    try:
        with pytest.warns(PluginWarning, match="frobnicate"):
            dev = polyten.device("weird")
        assert "frobnicate" not in dev.backend.kernels
    finally:
        unregister_plugin(name)


def test_loader_failure_is_an_unavailable_backend_with_the_reason():
    def load():
        raise ImportError("libfoo.so not found")
    name = _register(lambda reg: reg(BackendSpec("broken", load=load)), "test-broken")
    try:
        with pytest.warns(PluginWarning, match="libfoo"):
            with pytest.raises(BackendUnavailableError, match="libfoo.so not found"):
                polyten.set_backend("broken")
        row = {b.name: b for b in backends()}["broken"]
        assert not row.available and "libfoo" in row.reason
    finally:
        unregister_plugin(name)


def test_probe_reason_is_shown():
    spec = BackendSpec("ghost", load=lambda: None, probe=lambda: (False, "no ghost device"))
    name = _register(lambda reg: reg(spec), "test-ghost")
    try:
        row = {b.name: b for b in backends()}["ghost"]
        assert not row.available and row.reason == "no ghost device"
        with pytest.raises(BackendUnavailableError, match="no ghost device"):
            polyten.zeros(1, device="ghost")
    finally:
        unregister_plugin(name)


def test_missing_primitive_names_op_and_backend():
    name = _register(lambda reg: reg(BackendSpec(
        "partial", load=lambda: make_cpu_clone("partial", drop=("exp",)))), "test-partial")
    try:
        x = polyten.ones(2, device="partial")
        with pytest.raises(polyten.KernelNotFoundError) as ei:
            polyten.exp(x)
        assert "exp" in str(ei.value) and "'partial'" in str(ei.value)
        assert "docs/backends.md" in str(ei.value)
    finally:
        unregister_plugin(name)


def test_composite_uses_default_when_backend_has_no_fused_kernel():
    name = _register(lambda reg: reg(BackendSpec(
        "nofuse", load=lambda: make_cpu_clone("nofuse", drop=("relu",)))), "test-nofuse")
    try:
        x = polyten.tensor([-1.0, 2.0], device="nofuse")
        assert polyten.relu(x).tolist() == [0.0, 2.0]
    finally:
        unregister_plugin(name)


# -- entry points, the allow-list and broken installed plugins (subprocesses) -------------

def _fake_dist(tmp_path, dist, module_code, ep_name):
    """Write an importable module plus a .dist-info declaring a 'polyten' entry point."""
    mod = f"{dist.replace('-', '_')}_mod"
    (tmp_path / f"{mod}.py").write_text(textwrap.dedent(module_code))
    info = tmp_path / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[polyten]\n{ep_name} = {mod}\n")


def test_installed_plugin_whose_import_raises_is_reported_not_fatal(tmp_path):
    _fake_dist(tmp_path, "polyten-broken", "raise ImportError('needs libbroken')", "broken")
    r = run_py("""
        import warnings, polyten
        from polyten.dispatch import plugin_errors
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            names = sorted(b.name for b in polyten.backends())
            print(names)
            print([str(x.message) for x in w])
        print([(e.plugin, e.distribution) for e in plugin_errors()])
        print((polyten.ones(2) * 3).tolist())
    """, env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "'cpu'" in out[0] and "broken" not in out[0]
    assert "needs libbroken" in out[1] and "polyten-broken" in out[1]
    assert "('broken', 'polyten-broken')" in out[2]
    assert out[3] == "[3.0, 3.0]"


def test_third_party_entry_point_backend_is_discovered(tmp_path):
    _fake_dist(tmp_path, "polyten-thirdparty", """
        from polyten.dispatch import BackendSpec, hookimpl

        def _load():
            import sys; sys.path.insert(0, %r)
            from conftest import make_cpu_clone
            return make_cpu_clone("third")

        @hookimpl
        def polyten_register_backends(register):
            register(BackendSpec("third", load=_load, description="test"))
    """ % os.path.dirname(__file__), "third")
    r = run_py("""
        import polyten
        row = {b.name: b for b in polyten.backends()}['third']
        print(row.distribution, row.version, row.available)
        with polyten.backend('third'):
            print(polyten.ones(2).device)
    """, env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["polyten-thirdparty", "1.2.3", "True", "third"]


def test_env_allow_list_limits_plugins():
    r = run_py("""
        import polyten
        print(sorted(b.name for b in polyten.backends()))
    """, env={registry.ENV_PLUGINS: "cpu"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['cpu']"
    r = run_py("""
        import polyten
        print(sorted(b.name for b in polyten.backends()))
        try:
            polyten.ones(1)
        except polyten.UnknownBackendError as e:
            print('no backend:', 'pip install polyten-cpu' in str(e))
    """, env={registry.ENV_PLUGINS: ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[]", "no backend: True"]


def test_default_backend_from_environment(cpu2):
    r = run_py("""
        import polyten
        try:
            polyten.get_backend()
        except polyten.UnknownBackendError as e:
            print('unknown:', "'nonexistent'" in str(e))
    """, env={"POLYTEN_BACKEND": "nonexistent"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "unknown: True"
    r = run_py("""
        import polyten
        print(polyten.get_backend(), polyten.ones(1).device)
    """, env={"POLYTEN_BACKEND": "cpu"})
    assert r.stdout.split() == ["cpu", "cpu"]


# -- issue 6: bad installed plugins are reported with their distribution -------------------
def test_bad_installed_plugins_are_reported_by_distribution_and_others_keep_working(tmp_path):
    """Hook raises, returns a spec instead of registering it, registers a non-backend, a name
    twice, a loader returning a non-backend, a kernel for an unknown op: each is reported
    naming its distribution; cpu, the template and the good third-party backend keep
    working."""
    clone = "import sys; sys.path.insert(0, %r); from conftest import make_cpu_clone" % \
        os.path.dirname(__file__)
    plugins = {
        "polyten-raises": ("raises", """
            from polyten.dispatch import hookimpl
            @hookimpl
            def polyten_register_backends(register):
                raise RuntimeError('hook exploded')
        """),
        "polyten-notabackend": ("notabackend", """
            from polyten.dispatch import hookimpl
            @hookimpl
            def polyten_register_backends(register):
                register({'name': 'dictbackend'})
        """),
        "polyten-returns": ("returns", """
            from polyten.dispatch import BackendSpec, hookimpl
            @hookimpl
            def polyten_register_backends(register):
                return BackendSpec('returned', load=lambda: None)
        """),
        "polyten-twice": ("twice", """
            from polyten.dispatch import BackendSpec, hookimpl
            @hookimpl
            def polyten_register_backends(register):
                register(BackendSpec('dup', load=lambda: None))
                register(BackendSpec('dup', load=lambda: None))
                register(BackendSpec('cpu', load=lambda: None))
        """),
        "polyten-badload": ("badload", """
            from polyten.dispatch import BackendSpec, hookimpl
            @hookimpl
            def polyten_register_backends(register):
                register(BackendSpec('badload', load=lambda: 'not a backend'))
        """),
        "polyten-unknownop": ("unknownop", """
            from polyten.dispatch import BackendSpec, hookimpl
            def _load():
                %s
                return make_cpu_clone('unknownop', frobnicate=lambda x: x)
            @hookimpl
            def polyten_register_backends(register):
                register(BackendSpec('unknownop', load=_load))
        """ % clone),
    }
    for dist, (ep, code) in plugins.items():
        _fake_dist(tmp_path, dist, code, ep)
    r = run_py("""
        import warnings, polyten
        from polyten.dispatch import plugin_errors
        warnings.simplefilter('ignore')
        names = sorted(b.name for b in polyten.backends())
        for name in ('badload', 'unknownop'):
            try:
                polyten.ones(1, device=name)
            except Exception as e:
                print('LOAD', name, type(e).__name__, e)
        for e in plugin_errors():
            print('ERR', e.distribution, '|', e.message)
        print('NAMES', names)
        print('CPU', (polyten.ones(2) * 3).tolist())
        print('TEMPLATE', (polyten.ones(2, device='template') + 1).tolist())
        print('UNKNOWNOP', (polyten.ones(2, device='unknownop') + 1).tolist())
    """, env={"PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    errs = [ln for ln in out.splitlines() if ln.startswith("ERR")]

    def err(dist, *words):
        assert any(ln.startswith(f"ERR {dist} |") and all(w in ln for w in words)
                   for ln in errs), (dist, words, errs)

    err("polyten-raises", "hook polyten_register_backends raised RuntimeError: hook exploded")
    err("polyten-notabackend", "(distribution 'polyten-notabackend')", "not a polyten.dispatch")
    err("polyten-returns", "returned BackendSpec", "call register(BackendSpec(...))")
    err("polyten-twice", "backend 'dup'", "already provides")
    # 'cpu' belongs to the plugin named cpu, in whatever order the entry points load
    assert any(ln.startswith("ERR polyten-twice |") and "backend 'cpu'" in ln and
               ("provides under its own name" in ln or "already provides" in ln)
               for ln in errs), errs
    err("polyten-badload", "load() returned str", "not a polyten.dispatch.Backend")
    err("polyten-unknownop", "'frobnicate'", "not an op of polyten's op table")
    assert "LOAD badload BackendUnavailableError" in out and "polyten-badload" in out
    names = out.split("NAMES ")[1].splitlines()[0]
    assert "'cpu'" in names and "'dup'" in names and "dictbackend" not in names
    assert "CPU [3.0, 3.0]" in out and "TEMPLATE [2.0, 2.0]" in out
    assert "UNKNOWNOP [2.0, 2.0]" in out
