"""Make this checkout's packages importable and discoverable in the running Python, with no
build backend, no pip and no network: what ``pip install -e`` leaves behind, written directly.

For each project directory given (default: polyten, both plugins and the conformance suite) it
writes a ``<name>-<version>.dist-info`` (METADATA and entry_points.txt from the project's
pyproject.toml, so importlib-metadata finds the ``polyten`` backend entry points and pytest the
conformance plugin) into the interpreter's site-packages, and one ``.pth`` file that puts the
project directories on ``sys.path``.

It is the fallback of ``scripts/gpu_check.sh``: the device machine cannot fetch packages, and an
editable install there needs setuptools new enough to build wheels (or ``wheel``) in the
environment.  Dependencies are not installed; they must already be there.

Usage: python scripts/dev_install.py [PROJECT_DIR ...]
"""
from __future__ import annotations

import os
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PROJECTS = (".", "plugins/polyten_cpu", "plugins/polyten_cuda", "conformance")
PTH_NAME = "_polyten_checkout.pth"


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SystemExit("dev_install: reading pyproject.toml needs Python >= 3.11 or the "
                             "tomli package; install one, or use `pip install -e` instead")
    with open(path, "rb") as f:
        return tomllib.load(f)


def _dist_info_name(name: str, version: str) -> str:
    # the normalised form pip writes (PEP 503 name, '-' to '_')
    norm = "_".join(part for part in name.replace(".", "-").replace("_", "-").split("-") if part)
    return f"{norm}-{version}.dist-info"


def _entry_points_txt(project: dict) -> str:
    groups = dict(project.get("entry-points", {}))
    if project.get("scripts"):
        groups["console_scripts"] = project["scripts"]
    out = []
    for group, entries in groups.items():
        out.append(f"[{group}]")
        out.extend(f"{key} = {value}" for key, value in entries.items())
        out.append("")
    return "\n".join(out)


def install(project_dirs, site_dir: str) -> list[str]:
    """Write the dist-info of each project into ``site_dir`` and one .pth naming the project
    directories; returns the distribution names written."""
    names, paths = [], []
    for rel in project_dirs:
        src = os.path.normpath(os.path.join(ROOT, rel))
        project = _load_toml(os.path.join(src, "pyproject.toml"))["project"]
        name, version = project["name"], project["version"]
        info = os.path.join(site_dir, _dist_info_name(name, version))
        os.makedirs(info, exist_ok=True)
        requires = "".join(f"Requires-Dist: {r}\n" for r in project.get("dependencies", ()))
        files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}",
            "entry_points.txt": _entry_points_txt(project),
            "INSTALLER": "polyten-dev-install\n",
        }
        for fname, text in files.items():
            with open(os.path.join(info, fname), "w") as f:
                f.write(text)
        with open(os.path.join(info, "RECORD"), "w") as f:
            f.writelines(f"{os.path.basename(info)}/{fname},,\n" for fname in [*files, "RECORD"])
        names.append(name)
        paths.append(src)
    with open(os.path.join(site_dir, PTH_NAME), "w") as f:
        f.write("".join(p + "\n" for p in paths))
    return names


def main(argv=None) -> int:
    dirs = (sys.argv[1:] if argv is None else argv) or DEFAULT_PROJECTS
    site_dir = sysconfig.get_paths()["purelib"]
    names = install(dirs, site_dir)
    print(f"dev_install: {', '.join(names)} from {ROOT} into {site_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
