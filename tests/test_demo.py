"""``polyten demo``: the README's first command trains on the digits offline, reaches the
accuracy the issue asks for with an MLP and a CNN, and saves a checkpoint that reloads."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

import polyten as pt
from polyten import demo
from polyten.cli import main as cli


def _quiet(*args):
    pass


def test_mlp_reaches_97_percent():
    model, opt, acc, _ = demo.train("mlp", progress=False, log=_quiet)
    assert acc >= 0.97, acc
    assert model.training  # evaluation switches to eval() and back


def test_cnn_reaches_97_percent():
    _, _, acc, _ = demo.train("cnn", epochs=8, progress=False, log=_quiet)
    assert acc >= 0.97, acc


def test_training_is_reproducible_per_seed():
    a = demo.train("mlp", epochs=2, seed=3, progress=False, log=_quiet)[0]
    b = demo.train("mlp", epochs=2, seed=3, progress=False, log=_quiet)[0]
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and (va == vb).all().item()


def test_cli_trains_saves_and_reloads(tmp_path, capsys):
    path = tmp_path / "digits.safetensors"
    assert cli(["demo", "--epochs", "3", "--checkpoint", str(path)]) == 0
    out = capsys.readouterr()
    assert "test accuracy" in out.out and "reloaded model" in out.out
    assert "epoch" in out.err  # tqdm's progress bar (stderr)
    ckpt = pt.load(path)
    assert ckpt["model_kind"] == "mlp" and ckpt["epochs"] == 3
    assert set(ckpt["model"]) == set(demo.make_model("mlp").state_dict())
    assert ckpt["optimizer"]["param_groups"][0]["momentum"] == 0.9


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model 'rnn'"):
        demo.make_model("rnn")
