"""Every test that docs/reliability.md and docs/security.md name as proof of a guarantee exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("reliability.md", "security.md")


def test_every_named_test_exists() -> None:
    text = {doc: (ROOT / "docs" / doc).read_text() for doc in DOCS}
    named = re.findall(r"`tests/([\w.]+\.py)::(\w+)`", text["reliability.md"])
    assert len(named) > 20
    missing = []
    for doc in DOCS:
        for file, test in re.findall(r"`tests/([\w.]+\.py)::(\w+)`", text[doc]):
            tree = ast.parse((ROOT / "tests" / file).read_text())
            functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            if test not in functions:
                missing.append(f"{doc}: {file}::{test}")
        for file in re.findall(r"`tests/([\w.]+\.py)`", text[doc]):
            if not (ROOT / "tests" / file).is_file():
                missing.append(f"{doc}: {file}")
    assert missing == []
