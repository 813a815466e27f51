"""Generator states: ``polyten.get_rng_state`` / ``set_rng_state``, ``polyten.random.fork_rng``
and ``polyten.cuda``'s state functions without CUDA (the GPU side is in ``test_cuda.py`` and
``test_cuda_philox.py``).

The property checked is PyTorch's: after ``set_rng_state(s)`` every sampling function draws
again what it drew after ``s`` was taken -- compared value for value, each call a different
function, so a state that only covered one kernel's stream would fail.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import polyten as pt
import polyten.nn.functional as F


def _draws():
    x = pt.ones(64)
    return [pt.rand(5), pt.randn(3, 4, dtype=pt.float64), pt.randint(-3, 9, (10,)),
            pt.randperm(12), pt.normal(2.0, 0.5, (6,)), pt.bernoulli(pt.full((8,), 0.3)),
            pt.multinomial(pt.tensor([0.2, 0.5, 0.3]), 6, replacement=True),
            F.dropout(x, 0.5), pt.empty(7).uniform_(-1, 1),
            pt.empty(4, dtype=pt.float16).normal_(),
            pt.rand(3, dtype=pt.complex64)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(x.numpy(), y.numpy())


def test_state_is_a_uint8_cpu_tensor_and_restores_every_sampler():
    pt.manual_seed(11)
    pt.rand(3)  # somewhere in the middle of the stream
    s = pt.get_rng_state()
    assert s.dtype == pt.uint8 and s.device == pt.device("cpu") and s.ndim == 1
    first = _draws()
    pt.set_rng_state(s)
    _same(_draws(), first)
    pt.set_rng_state(s)
    pt.rand(1)
    assert not np.array_equal(pt.rand(5).numpy(), first[0].numpy())


def test_state_taken_before_the_first_draw_after_manual_seed():
    pt.manual_seed(2024)
    s = pt.get_rng_state()
    a = _draws()
    pt.manual_seed(2024)
    _same(_draws(), a)
    pt.manual_seed(1)
    pt.set_rng_state(s)
    _same(_draws(), a)
    assert pt.initial_seed() == 1  # the global seed is manual_seed's, as in PyTorch


def test_get_rng_state_is_a_copy():
    s = pt.get_rng_state()
    before = s.clone()
    pt.rand(10)
    assert (s == before).all().item() and not (pt.get_rng_state() == s).all().item()


def test_state_survives_a_checkpoint(tmp_path):
    pt.manual_seed(3)
    net = pt.nn.Linear(4, 2)
    path = tmp_path / "ckpt.pt"
    pt.save({"model": net.state_dict(), "rng": pt.get_rng_state()}, path)
    a = _draws()
    pt.manual_seed(99)
    ckpt = pt.load(path)
    pt.set_rng_state(ckpt["rng"])
    _same(_draws(), a)


def test_fork_rng_restores_the_stream_even_on_error():
    pt.manual_seed(5)
    pt.rand(2)
    with pt.random.fork_rng():
        pt.randn(100)
        pt.randint(0, 5, (9,))
    a = _draws()
    pt.manual_seed(5)
    pt.rand(2)
    _same(_draws(), a)
    pt.manual_seed(5)
    pt.rand(2)
    with pytest.raises(KeyError):
        with pt.random.fork_rng(devices=[]):
            pt.rand(50)
            raise KeyError("inside")
    _same(_draws(), a)


def test_fork_rng_disabled_forks_nothing():
    pt.manual_seed(5)
    with pt.random.fork_rng(enabled=False):
        inside = pt.rand(4)
    pt.manual_seed(5)
    assert np.array_equal(pt.rand(4).numpy(), inside.numpy())


@pytest.mark.skipif(pt.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_fork_rng_without_cuda_forks_the_cpu_and_cuda_functions_say_why():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pt.random.fork_rng():  # device_type="cuda", unavailable here: cpu only
            pt.rand(3)
    for call in (pt.cuda.get_rng_state, pt.cuda.get_rng_state_all,
                 lambda: pt.cuda.set_rng_state(pt.get_rng_state())):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            call()


def test_torch_names_are_there():
    import polyten.random as r
    assert r.get_rng_state is pt.get_rng_state and r.set_rng_state is pt.set_rng_state
    assert r.manual_seed is pt.manual_seed and r.initial_seed is pt.initial_seed
    for name in ("get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all"):
        assert callable(getattr(pt.cuda, name))


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,err,msg", [
    ([1, 2, 3], TypeError, r"set_rng_state: expected the 1-D uint8 tensor .* got list"),
    (pt.zeros(48), TypeError, r"got a float32 tensor of shape \(48,\)"),
    (pt.zeros(2, 24, dtype=pt.uint8), TypeError, r"got a uint8 tensor of shape \(2, 24\)"),
    (pt.zeros(5, dtype=pt.uint8), ValueError,
     r"set_rng_state: expected the 48-byte state of a PCG64 generator .* got 5 bytes, for "
     r"cpu's generator; pass a state that get_rng_state\(\) returned for a cpu device"),
])
def test_bad_states_are_refused_and_change_nothing(bad, err, msg):
    pt.manual_seed(8)
    s = pt.get_rng_state()
    with pytest.raises(err, match=msg):
        pt.set_rng_state(bad)
    assert (pt.get_rng_state() == s).all().item()


def test_a_backend_without_state_hooks_says_so(cpu2):
    pt.rand(2, device=cpu2)
    with pytest.raises(NotImplementedError,
                       match=r"get_rng_state: the 'cpu2' backend cannot save its random "
                             r"generator's state .* gives no get_rng_state\); reseed with "
                             r"polyten.manual_seed\(\)"):
        pt.get_rng_state(device=cpu2)
    with pytest.raises(NotImplementedError, match="'cpu2' backend cannot restore"):
        pt.set_rng_state(pt.get_rng_state(), device=cpu2)
    with pytest.raises(NotImplementedError, match="fork_rng: the 'cpu2' backend"):
        with pt.random.fork_rng(device_type="cpu2"):
            pass


def test_states_of_another_backend_go_through_device():
    # the same functions serve any backend's device: here the cpu device named explicitly
    s = pt.get_rng_state(device="cpu")
    a = pt.rand(4)
    pt.set_rng_state(s, device=pt.device("cpu"))
    assert np.array_equal(pt.rand(4).numpy(), a.numpy())


def test_host_generator_state_uses_the_same_codec():
    g = pt.Generator().manual_seed(4)
    st = g.get_state()
    rng = g._numpy()
    first = rng.integers(0, 1000, 5).tolist()
    g.set_state(st)
    assert g._numpy().integers(0, 1000, 5).tolist() == first
    with pytest.raises(ValueError, match=r"Generator.set_state: expected the uint8 tensor of "
                                         r"shape \(48,\)"):
        g.set_state(pt.zeros(3, dtype=pt.uint8))


# --- generator=: a polyten.Generator's own stream ----------------------------------------------
SAMPLERS = {
    "rand": lambda g: pt.rand(5, generator=g),
    "randn": lambda g: pt.randn(2, 3, generator=g, dtype=pt.float64),
    "randint": lambda g: pt.randint(0, 100, (6,), generator=g),
    "randperm": lambda g: pt.randperm(10, generator=g),
    "normal": lambda g: pt.normal(pt.zeros(4), pt.ones(4), generator=g),
    "bernoulli": lambda g: pt.bernoulli(pt.full((8,), 0.5), generator=g),
    "multinomial": lambda g: pt.multinomial(pt.ones(6), 3, generator=g),
    "rand_like": lambda g: pt.rand_like(pt.zeros(3), generator=g),
    "randn_like": lambda g: pt.randn_like(pt.zeros(3), generator=g),
    "randint_like": lambda g: pt.randint_like(pt.zeros(3), 0, 9, generator=g),
    "uniform_": lambda g: pt.empty(4).uniform_(-2, 2, generator=g),
    "normal_": lambda g: pt.empty(4).normal_(generator=g),
    "bernoulli_": lambda g: pt.empty(6).bernoulli_(0.5, generator=g),
    "random_": lambda g: pt.empty(4, dtype=pt.int64).random_(0, 50, generator=g),
    "exponential_": lambda g: pt.empty(4).exponential_(2.0, generator=g),
    "Tensor.bernoulli": lambda g: pt.full((5,), 0.3).bernoulli(generator=g),
    "init.kaiming_uniform_": lambda g: pt.nn.init.kaiming_uniform_(pt.empty(3, 4), generator=g),
    "init.orthogonal_": lambda g: pt.nn.init.orthogonal_(pt.empty(3, 3), generator=g),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_generator_draws_its_own_stream_and_leaves_the_default_alone(name):
    f = SAMPLERS[name]
    g = pt.Generator().manual_seed(5)
    a, b = f(g), f(g)
    g.manual_seed(5)
    _same([f(g), f(g)], [a, b])
    assert not np.array_equal(a.numpy(), b.numpy()) or a.numel() < 3
    pt.manual_seed(1)
    x = pt.rand(6)
    pt.manual_seed(1)
    f(pt.Generator().manual_seed(9))
    assert np.array_equal(pt.rand(6).numpy(), x.numpy())


def test_generator_stream_is_numpys_pcg64_shared_with_host_draws():
    # an independent reference: NumPy's PCG64 seeded the same way, drawing the same calls
    g = pt.Generator().manual_seed(3)
    ref = np.random.Generator(np.random.PCG64(3))
    got = pt.rand(5, generator=g).numpy()
    np.testing.assert_array_equal(got, ref.random(5, dtype=np.float32))
    # host draws (a sampler's) and tensor draws continue one stream, as torch.Generator
    assert g._numpy().integers(0, 10, 4).tolist() == ref.integers(0, 10, 4).tolist()
    np.testing.assert_array_equal(pt.randn(3, generator=g, dtype=pt.float64).numpy(),
                                  ref.standard_normal(3))
    st = g.get_state()
    c = pt.rand(4, generator=g)
    g.set_state(st)
    assert np.array_equal(pt.rand(4, generator=g).numpy(), c.numpy())


def test_generator_on_the_wrong_device_or_of_the_wrong_type(cpu2):
    with pytest.raises(ValueError, match=r"rand: the generator is on cpu but the samples are "
                                         r"drawn on cpu2; pass a polyten.Generator\(device="
                                         r"'cpu2'\)"):
        pt.rand(2, device=cpu2, generator=pt.Generator())
    g2 = pt.Generator(device=cpu2)
    assert g2.device == cpu2 and "cpu2" in repr(g2)
    with pytest.raises(NotImplementedError, match=r"randn: generator= needs the 'cpu2' backend "
                                                  r"to save and restore"):
        pt.randn(2, device=cpu2, generator=g2)
    with pytest.raises(TypeError, match=r"randperm: generator must be a polyten.Generator"):
        pt.randperm(3, generator=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match=r"host-side draws .* need a cpu generator"):
        list(pt.data.RandomSampler(range(4), generator=g2))


def test_threads_drawing_with_and_without_a_generator_keep_their_streams():
    """While one thread's generator= state is swapped into the backend, another thread's
    draws wait: each stream comes out as if drawn alone (the swaps hold a lock, as NumPy's
    generators do per draw)."""
    import sys
    import threading
    n = 1500  # without the lock, about 40 % of the draws came out of the wrong stream
    pt.manual_seed(17)
    alone = [pt.rand(3).numpy() for _ in range(n)]
    g_alone = pt.Generator().manual_seed(5)
    alone_g = [pt.rand(3, generator=g_alone).numpy() for _ in range(n)]
    pt.manual_seed(17)
    g = pt.Generator().manual_seed(5)
    got, got_g = [], []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        start = threading.Barrier(2)

        def plain():
            start.wait()
            got.extend(pt.rand(3).numpy() for _ in range(n))

        def with_generator():
            start.wait()
            got_g.extend(pt.rand(3, generator=g).numpy() for _ in range(n))
        a, b = threading.Thread(target=plain), threading.Thread(target=with_generator)
        a.start(), b.start()
        a.join(), b.join()
    finally:
        sys.setswitchinterval(old)
    assert all(np.array_equal(x, y) for x, y in zip(got, alone)) and len(got) == n
    assert all(np.array_equal(x, y) for x, y in zip(got_g, alone_g)) and len(got_g) == n


def _equalities(lib):
    """Which draws of one script are equal: the script uses every state function; the
    pattern, not the numbers, must match PyTorch's (the generators differ)."""
    draws = []
    lib.manual_seed(0)
    s = lib.get_rng_state()
    draws.append(lib.rand(5))                              # 0
    with lib.random.fork_rng(devices=[]):
        draws.append(lib.rand(5))                          # 1: = 2 (forked)
    draws.append(lib.rand(5))                              # 2
    lib.set_rng_state(s)
    draws.append(lib.rand(5))                              # 3: = 0 (restored)
    g = lib.Generator().manual_seed(0)
    draws.append(lib.rand(5, generator=g))                 # 4: = 0 (same seed, same stream)
    draws.append(lib.rand(5))                              # 5: = 1, 2 (default untouched by g)
    gs = g.get_state()
    draws.append(lib.rand(5, generator=g))                 # 6
    g.set_state(gs)
    draws.append(lib.rand(5, generator=g))                 # 7: = 6
    lib.manual_seed(0)
    draws.append(lib.rand(5))                              # 8: = 0
    h = [np.asarray(d.numpy()) for d in draws]
    return [[bool(np.array_equal(a, b)) for b in h] for a in h]


def test_state_functions_behave_as_pytorchs():
    torch = pytest.importorskip("torch")
    assert _equalities(pt) == _equalities(torch)
