"""Regenerate the generated sections of the backend docs from polyten/dispatch/optable.py:
the op table of docs/backends.md and the tier summary of docs/backends.md and
docs/writing-a-backend.md.  ``--check`` exits 1 when a doc is out of date."""

from __future__ import annotations

import pathlib
import sys

from polyten.dispatch.optable import markdown_table, tiers_markdown

BEGIN, END = "<!-- optable:begin -->", "<!-- optable:end -->"
DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "backends.md"
GUIDE = DOCS / "writing-a-backend.md"
SECTIONS = {"optable": markdown_table, "tiers": tiers_markdown}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin not in text:
            continue
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{make()}{end}{tail}"
    return text


if __name__ == "__main__":
    stale = []
    for doc in (DOC, GUIDE):
        if not doc.exists():
            continue
        text = doc.read_text()
        new = render(text)
        if new != text:
            stale.append(doc.name)
            if "--check" not in sys.argv:
                doc.write_text(new)
    if "--check" in sys.argv:
        sys.exit(1 if stale else 0)
