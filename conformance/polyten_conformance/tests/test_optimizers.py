"""Optimizer steps, GradScaler and gradient clipping on the backend under test, against NumPy.

polyten runs an optimizer step through the backend's ``fused_optimizers`` when it offers them
(the cuda backend: multi-tensor CUDA kernels; a backend without them gets polyten's generic
steps in ops), so these tests check whatever the backend provides: every optimizer of
``polyten.optim`` (SGD, Adam/AdamW, RMSprop, Adagrad, Adamax, RAdam, NAdam, Adadelta, Rprop)
with their options over a few steps, GradScaler's scale / unscale / skip / update cycle with
each (overflowing steps before and after the optimizer state exists must neither move the
parameters nor advance the step counters that the step constants use), and
``clip_grad_norm_``.  The references are PyTorch's formulas written in NumPy float64 here;
the parameters are float32, one of them a non-contiguous view.
"""

from __future__ import annotations

import numpy as np

import pytest

from polyten_conformance.harness import ConformanceFailure

from .conftest import mark

RTOL, ATOL = 2e-5, 1e-6


def _m(op):
    return mark(op=op, area="optim", tier="core", kernel=None)


def _setup(conf, seed=0):
    """Three float32 parameters on the backend (the last a transposed, non-contiguous view)
    and their float64 NumPy copies."""
    pt, nn = conf.pt, conf.need("nn")
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal((3, 4)), rng.standard_normal(5),
              rng.standard_normal((2, 3))]
    params = [nn.Parameter(pt.asarray(v.astype("float32"), device=conf.device))
              for v in values[:2]]
    params.append(nn.Parameter(pt.asarray(values[2].T.astype("float32"), device=conf.device)))
    ref = [v.astype("float32").astype(np.float64) for v in values[:2]]
    ref.append(values[2].T.astype("float32").astype(np.float64))
    return params, ref


def _grads(step, shapes, seed=1):
    rng = np.random.default_rng(seed + 100 * step)
    return [rng.standard_normal(s).astype("float32").astype(np.float64) for s in shapes]


def _check(conf, what, params, ref):
    for i, (p, r) in enumerate(zip(params, ref)):
        got = np.asarray(p.detach().cpu().numpy(), dtype=np.float64)
        if got.shape != r.shape or not np.allclose(got, r, rtol=RTOL, atol=ATOL):
            err = np.max(np.abs(got - r)) if got.shape == r.shape else "shape"
            raise ConformanceFailure(
                f"{what} on backend {conf.backend!r}: parameter {i} (shape {r.shape}) differs "
                f"from PyTorch's formula in NumPy float64 (max abs error {err}, tolerance "
                f"rtol={RTOL}, atol={ATOL}).\n  got:      {got.ravel()[:6]}\n"
                f"  expected: {r.ravel()[:6]}")


# --- the references: PyTorch's algorithms ---------------------------------------------------
class _SGD:
    def __init__(self, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        self.h = dict(lr=lr, momentum=momentum, dampening=dampening, wd=weight_decay,
                      nesterov=nesterov, maximize=maximize)
        self.bufs = None

    def step(self, ps, gs):
        h = self.h
        first = self.bufs is None
        if first:
            self.bufs = [None] * len(ps)
        for i, (p, g) in enumerate(zip(ps, gs)):
            d = -g if h["maximize"] else g
            if h["wd"]:
                d = d + h["wd"] * p
            if h["momentum"]:
                b = d if first else h["momentum"] * self.bufs[i] + (1 - h["dampening"]) * d
                self.bufs[i] = b
                d = d + h["momentum"] * b if h["nesterov"] else b
            ps[i] = p - h["lr"] * d


class _Adam:
    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False, decoupled=False):
        self.h = dict(lr=lr, b1=betas[0], b2=betas[1], eps=eps, wd=weight_decay,
                      amsgrad=amsgrad, maximize=maximize, decoupled=decoupled)
        self.t = 0
        self.m = self.v = self.vmax = None

    def step(self, ps, gs):
        h = self.h
        if self.m is None:
            self.m = [np.zeros_like(p) for p in ps]
            self.v = [np.zeros_like(p) for p in ps]
            self.vmax = [np.zeros_like(p) for p in ps]
        self.t += 1
        bc1, bc2 = 1 - h["b1"] ** self.t, 1 - h["b2"] ** self.t
        for i, (p, g) in enumerate(zip(ps, gs)):
            g = -g if h["maximize"] else g
            if h["wd"]:
                if h["decoupled"]:
                    p = p * (1 - h["lr"] * h["wd"])
                else:
                    g = g + h["wd"] * p
            self.m[i] = h["b1"] * self.m[i] + (1 - h["b1"]) * g
            self.v[i] = h["b2"] * self.v[i] + (1 - h["b2"]) * g * g
            v = self.v[i]
            if h["amsgrad"]:
                self.vmax[i] = np.maximum(self.vmax[i], v)
                v = self.vmax[i]
            denom = np.sqrt(v) / np.sqrt(bc2) + h["eps"]
            ps[i] = p - h["lr"] / bc1 * self.m[i] / denom


class _Stateful:
    """A reference with per-parameter state arrays and a step count."""

    def __init__(self, **h):
        self.h, self.t, self.s = h, 0, None

    def step(self, ps, gs):
        if self.s is None:
            self.s = [self.init(p) for p in ps]
        self.t += 1
        for i, (p, g) in enumerate(zip(ps, gs)):
            ps[i] = self.update(p, g, self.s[i])

    @staticmethod
    def signed(p, g, h):
        g = -g if h.get("maximize") else g
        return g + h["weight_decay"] * p if h.get("weight_decay") else g


class _RMSprop(_Stateful):
    def init(self, p):
        return {"v": np.zeros_like(p), "ga": np.zeros_like(p), "buf": np.zeros_like(p)}

    def update(self, p, g, s):
        h = dict(dict(alpha=0.99, eps=1e-8, momentum=0.0, centered=False), **self.h)
        g = self.signed(p, g, h)
        s["v"] = h["alpha"] * s["v"] + (1 - h["alpha"]) * g * g
        if h["centered"]:
            s["ga"] = h["alpha"] * s["ga"] + (1 - h["alpha"]) * g
            avg = np.sqrt(s["v"] - s["ga"] ** 2) + h["eps"]
        else:
            avg = np.sqrt(s["v"]) + h["eps"]
        if h["momentum"]:
            s["buf"] = h["momentum"] * s["buf"] + g / avg
            return p - h["lr"] * s["buf"]
        return p - h["lr"] * g / avg


class _Adagrad(_Stateful):
    def init(self, p):
        return {"sum": np.zeros_like(p)}

    def update(self, p, g, s):
        h = dict(dict(lr_decay=0.0, eps=1e-10), **self.h)
        g = self.signed(p, g, h)
        clr = h["lr"] / (1 + (self.t - 1) * h["lr_decay"])
        s["sum"] = s["sum"] + g * g
        return p - clr * g / (np.sqrt(s["sum"]) + h["eps"])


class _Adamax(_Stateful):
    def init(self, p):
        return {"m": np.zeros_like(p), "u": np.zeros_like(p)}

    def update(self, p, g, s):
        h = dict(dict(betas=(0.9, 0.999), eps=1e-8), **self.h)
        (b1, b2), g = h["betas"], self.signed(p, g, h)
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["u"] = np.maximum(b2 * s["u"], np.abs(g) + h["eps"])
        return p - h["lr"] / (1 - b1 ** self.t) * s["m"] / s["u"]


def _decayed(p, g, h):
    """The gradient with L2 weight decay, or ``p`` decayed first (decoupled)."""
    g = -g if h.get("maximize") else g
    if h.get("weight_decay"):
        if h.get("decoupled_weight_decay"):
            p = p * (1 - h["lr"] * h["weight_decay"])
        else:
            g = g + h["weight_decay"] * p
    return p, g


class _RAdam(_Stateful):
    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p)}

    def update(self, p, g, s):
        h = dict(dict(betas=(0.9, 0.999), eps=1e-8), **self.h)
        (b1, b2), t = h["betas"], self.t
        p, g = _decayed(p, g, h)
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2 ** t / bc2
        if rho_t > 5:
            rect = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                           / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return p - h["lr"] * s["m"] / bc1 * rect * np.sqrt(bc2) / (np.sqrt(s["v"]) + h["eps"])
        return p - h["lr"] * s["m"] / bc1


class _NAdam(_Stateful):
    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "prod": 1.0}

    def update(self, p, g, s):
        h = dict(dict(betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3), **self.h)
        (b1, b2), t, md = h["betas"], self.t, h["momentum_decay"]
        p, g = _decayed(p, g, h)
        mu = b1 * (1 - 0.5 * 0.96 ** (t * md))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * md))
        s["prod"] *= mu
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        denom = np.sqrt(s["v"] / (1 - b2 ** t)) + h["eps"]
        p = p - h["lr"] * (1 - mu) / (1 - s["prod"]) * g / denom
        return p - h["lr"] * mu_next / (1 - s["prod"] * mu_next) * s["m"] / denom


class _Adadelta(_Stateful):
    def init(self, p):
        return {"v": np.zeros_like(p), "acc": np.zeros_like(p)}

    def update(self, p, g, s):
        h = dict(dict(rho=0.9, eps=1e-6), **self.h)
        g = self.signed(p, g, h)
        s["v"] = h["rho"] * s["v"] + (1 - h["rho"]) * g * g
        delta = np.sqrt(s["acc"] + h["eps"]) / np.sqrt(s["v"] + h["eps"]) * g
        s["acc"] = h["rho"] * s["acc"] + (1 - h["rho"]) * delta * delta
        return p - h["lr"] * delta


class _Rprop(_Stateful):
    def init(self, p):
        return {"prev": np.zeros_like(p), "size": np.full_like(p, self.h["lr"])}

    def update(self, p, g, s):
        h = dict(dict(etas=(0.5, 1.2), step_sizes=(1e-6, 50)), **self.h)
        g = -g if h.get("maximize") else g
        sign = g * s["prev"]
        factor = np.where(sign > 0, h["etas"][1], np.where(sign < 0, h["etas"][0], 1.0))
        s["size"] = np.clip(s["size"] * factor, *h["step_sizes"])
        g = np.where(sign < 0, 0.0, g)
        s["prev"] = g
        return p - np.sign(g) * s["size"]


_CASES = {
    "SGD": ("SGD", dict(lr=0.1), _SGD),
    "SGD-momentum-nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True,
                                          weight_decay=0.01), _SGD),
    "SGD-dampening-maximize": ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3,
                                           maximize=True), _SGD),
    "Adam": ("Adam", dict(lr=0.01, weight_decay=0.1), _Adam),
    "AdamW": ("AdamW", dict(lr=0.01, weight_decay=0.05),
              lambda **k: _Adam(decoupled=True, **k)),
    "Adam-amsgrad-maximize": ("Adam", dict(lr=0.02, betas=(0.8, 0.99), amsgrad=True,
                                           maximize=True), _Adam),
    "RMSprop-centered-momentum": ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5,
                                                  weight_decay=0.01), _RMSprop),
    "RMSprop": ("RMSprop", dict(lr=0.01, alpha=0.9), _RMSprop),
    "Adagrad": ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01), _Adagrad),
    "Adamax": ("Adamax", dict(lr=0.02, weight_decay=0.01), _Adamax),
    # beta2 0.99: rho_t passes 5 at the sixth step, so both of RAdam's branches run
    "RAdam-decoupled": ("RAdam", dict(lr=0.02, betas=(0.9, 0.99), weight_decay=0.1,
                                      decoupled_weight_decay=True), _RAdam),
    "NAdam": ("NAdam", dict(lr=0.02, weight_decay=0.01), _NAdam),
    "Adadelta": ("Adadelta", dict(lr=0.5, weight_decay=0.01), _Adadelta),
    "Rprop-maximize": ("Rprop", dict(lr=0.01, maximize=True), _Rprop),
}


@pytest.mark.parametrize("case", sorted(_CASES))
@_m("optim.step")
def test_optimizer_steps_match_numpy(conf, case):
    """Seven steps of each optimizer (the backend's fused step when it offers one) against
    PyTorch's algorithm in NumPy float64."""
    optim = conf.need("optim")
    name, kw, Ref = _CASES[case]
    params, ref = _setup(conf)
    opt = getattr(optim, name)(params, **kw)
    reference = Ref(**kw)
    pt = conf.pt
    for step in range(7):
        gs = _grads(step, [r.shape for r in ref])
        for p, g in zip(params, gs):
            p.grad = pt.asarray(g.astype("float32"), device=conf.device)
        opt.step()
        reference.step(ref, gs)
        _check(conf, f"{case} step {step + 1}", params, ref)


@pytest.mark.parametrize("case", sorted(c for c in _CASES if c not in ("SGD",
                                                                     "SGD-dampening-maximize")))
@_m("amp.GradScaler")
def test_grad_scaler_steps_match_numpy(conf, case):
    """GradScaler with growth_interval 2 over eight steps whose gradients overflow at the
    first step (no optimizer state yet) and at the fifth: those steps leave the parameters
    and the step counters alone and halve the scale; two finite steps in a row double it.
    The loss is ``sum(p * G)``, so each gradient is exactly ``G`` times the scale."""
    pt, optim, amp = conf.pt, conf.need("optim"), conf.need("amp")
    name, kw, Ref = _CASES[case]
    params, ref = _setup(conf, seed=3)
    opt = getattr(optim, name)(params, **kw)
    reference = Ref(**kw)
    scaler = amp.GradScaler(conf.device_type, init_scale=2.0 ** 8, growth_interval=2)
    scale, tracker, applied = 2.0 ** 8, 0, 0
    for step in range(8):
        gs = _grads(step, [r.shape for r in ref], seed=7)
        if step in (0, 4):
            gs[1][2] = np.inf
        opt.zero_grad()
        loss = sum((p * pt.asarray(g.astype("float32"), device=conf.device)).sum()
                   for p, g in zip(params, gs))
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        found = any(not np.isfinite(g).all() for g in gs)
        if found:
            scale, tracker = scale * 0.5, 0
        else:
            reference.step(ref, gs)
            applied += 1
            tracker += 1
            if tracker == 2:
                scale, tracker = scale * 2.0, 0
        what = f"GradScaler + {case}, step {step + 1}" + (" (overflowed)" if found else "")
        _check(conf, what, params, ref)
        got = scaler.get_scale()
        if got != scale:
            raise ConformanceFailure(f"{what} on backend {conf.backend!r}: the scale is {got}, "
                                     f"expected {scale} (halved after an overflow, doubled "
                                     f"after 2 finite steps)")
        if name != "SGD" and applied:
            counts = {int(opt.state[p]["step"]) for p in params}
            if counts != {applied}:
                raise ConformanceFailure(
                    f"{what} on backend {conf.backend!r}: the step counters are "
                    f"{sorted(counts)}, expected {applied} (a skipped step must not advance "
                    f"them: Adam's bias corrections depend on them)")


@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
@_m("nn.utils.clip_grad_norm_")
def test_clip_grad_norm_matches_numpy(conf, norm_type):
    """The total norm of all the gradients together and the clipped gradients."""
    pt = conf.pt
    clip = conf.need("nn.utils.clip_grad_norm_")
    params, ref = _setup(conf, seed=5)
    gs = [3.0 * g for g in _grads(0, [r.shape for r in ref], seed=9)]
    for p, g in zip(params, gs):
        p.grad = pt.asarray(g.astype("float32"), device=conf.device)
    total = clip(params, 1.0, norm_type=norm_type)
    flat = np.concatenate([g.ravel() for g in gs])
    want = np.linalg.norm(flat, ord=norm_type)
    coef = min(1.0 / (want + 1e-6), 1.0)
    got = float(total.item())
    if not np.isclose(got, want, rtol=RTOL):
        raise ConformanceFailure(f"clip_grad_norm_(norm_type={norm_type}) on backend "
                                 f"{conf.backend!r}: total norm {got}, expected {want}")
    _check(conf, f"clip_grad_norm_(norm_type={norm_type})",
           [p.grad for p in params], [g * coef for g in gs])
