"""Compile-only nvcc checks of generated CUDA sources (no GPU needed), over every core.

nvcc compiles a translation unit on one core; the sources are dealt round-robin into one unit
per core and the units compiled side by side (the suite itself runs one test at a time).
"""

from __future__ import annotations

import os
import subprocess


def compile_only(tmp_path, units, prelude: str = "", arch: str = "sm_80",
                 stem: str = "kernels", flags=()) -> str:
    """Compile ``units`` (self-contained CUDA C strings, each after ``prelude``) as device
    code for ``arch`` with nvcc's ``flags`` besides; fails with nvcc's errors of every unit
    that does not compile, else returns what nvcc printed (``--resource-usage``: ptxas's
    registers per kernel)."""
    units = list(units)
    jobs = max(1, min(os.cpu_count() or 1, len(units)))
    procs = []
    for i in range(jobs):
        cu = tmp_path / f"{stem}_{i}.cu"
        cu.write_text(prelude + "".join(units[i::jobs]))
        procs.append(subprocess.Popen(
            ["nvcc", "-c", "-std=c++17", f"-arch={arch}", *flags, "-o",
             str(tmp_path / f"{stem}_{i}.o"), str(cu)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    errors, printed = [], []
    for p in procs:
        out, _ = p.communicate()
        printed.append(out)
        if p.returncode:
            errors.append(out[-3000:])
    assert not errors, "\n".join(errors)
    return "".join(printed)
