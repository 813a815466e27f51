"""Docs that must stay true: the op table in docs/backends.md and every hook documented."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib

from polyten.dispatch import hookspecs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_backends_doc_op_table_is_current():
    spec = importlib.util.spec_from_file_location("update_docs", ROOT / "scripts" /
                                                  "update_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.DOC.read_text()
    assert mod.render(text) == text, "run: python scripts/update_docs.py"


def test_every_hook_has_a_docstring_and_is_in_the_docs():
    doc = (ROOT / "docs" / "backends.md").read_text()
    hooks = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if n.startswith("polyten_")]
    assert hooks
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, name
        assert name in doc, f"{name} is not documented in docs/backends.md"
