"""Regenerate the op table section of docs/backends.md from polyten/dispatch/optable.py."""

from __future__ import annotations

import pathlib
import sys

from polyten.dispatch.optable import markdown_table

BEGIN, END = "<!-- optable:begin -->", "<!-- optable:end -->"
DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "backends.md"


def render(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


if __name__ == "__main__":
    text = DOC.read_text()
    new = render(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    DOC.write_text(new)
