"""Every test that docs/reliability.md names as proof of a guarantee exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_named_test_exists() -> None:
    named = re.findall(r"`tests/([\w.]+\.py)::(\w+)`", (ROOT / "docs" / "reliability.md").read_text())
    assert len(named) > 20
    missing = []
    for file, test in named:
        tree = ast.parse((ROOT / "tests" / file).read_text())
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        if test not in functions:
            missing.append(f"{file}::{test}")
    assert missing == []
