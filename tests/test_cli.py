"""The ``polyten`` command."""

from __future__ import annotations

import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "polyten.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_backends_table():
    r = run("backends")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["backend", "distribution", "version"]
    cpu = next(line for line in lines if line.startswith("cpu "))
    assert "polyten-cpu" in cpu and "available" in cpu
    cuda = next(line for line in lines if line.startswith("cuda "))
    assert "polyten-cuda" in cuda


def test_backends_verbose_shows_kernels_and_dtypes():
    r = run("backends", "--verbose")
    assert r.returncode == 0, r.stderr
    assert "primitive kernels" in r.stdout and "float32" in r.stdout


def test_unknown_command_fails_with_usage():
    r = run("frobnicate")
    assert r.returncode != 0 and "usage" in r.stderr
