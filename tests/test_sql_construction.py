"""No SQL in chatdb is built from a formatted string, except from the constants allowed below.

Every f-string, ``%`` format and ``.format()`` call in ``chatdb/`` whose text
looks like SQL is found, and each value it interpolates must be on this
allow-list: chatdb's own table and column names, its statement fragments, and
timeout settings that are validated before use. Anything else (an id, a user
id, a date) must be a bound parameter, so a new interpolation fails this test
until someone reviews it and adds it here with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE|DROP|ALTER|SET LOCAL|GRANT|WHERE|ORDER BY)\b")

ALLOWED = {
    # Column lists: constants in the same module.
    ("chatdb/repositories/statements.py", "CONVERSATION_COLUMN_LIST"),
    ("chatdb/repositories/statements.py", "MESSAGE_COLUMN_LIST"),
    # Fragments chosen from fixed literals by an enum-like argument (cached per combination).
    ("chatdb/repositories/statements.py", "_message_bound(before, 'before', less=True)"),
    ("chatdb/repositories/statements.py", "_message_bound(after, 'after', less=False)"),
    ("chatdb/repositories/statements.py", "order"),
    # The name of a bound parameter ("before"/"after"), and the fragment built from it.
    ("chatdb/repositories/statements.py", "name"),
    ("chatdb/repositories/statements.py", "lookup"),
    ("chatdb/repositories/statements.py", "where"),
    # Table and column names from chatdb's own constants (stats' status and role breakdowns).
    ("chatdb/reports/stats.py", "column"),
    ("chatdb/reports/stats.py", "table"),
    # Table names from models.CHATDB_TABLES.
    ("chatdb/reports/status.py", "name"),
    # The embedded server's own database name, a constant.
    ("chatdb/embedded.py", "DATABASE_NAME"),
    # Index definitions written out from the models to compare with pg_get_indexdef's text
    # (never executed), and the planner's view of a CHECK expression over one of chatdb's
    # own tables: the models' constant expressions, or the server's own deparse of a live
    # constraint that uses only built-in objects, planned by EXPLAIN (not run) inside
    # doctor's read-only transaction.
    ("chatdb/reports/catalog.py", "'UNIQUE ' if unique else ''"),
    ("chatdb/reports/catalog.py", "name"),
    ("chatdb/reports/catalog.py", "table"),
    ("chatdb/reports/catalog.py", "columns"),
    ("chatdb/reports/catalog.py", "expression"),
    # The search index's name, a constant, and its text search configuration: checked against a
    # strict name pattern (reports.search.check_config) and pg_ts_config before any statement.
    ("chatdb/jobs/queries/search.py", "INDEX_NAME"),
    ("chatdb/jobs/queries/search.py", "config"),
    # Timeout settings, validated against a strict pattern (tests/test_migration_lint.py).
    ("chatdb/migrations.py", "lock_timeout()"),
    ("chatdb/migrations.py", "statement_timeout()"),
}


def interpolations() -> set[tuple[str, str]]:
    found = set()
    for path in sorted((ROOT / "chatdb").rglob("*.py")):
        source = path.read_text()
        relative = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(source)):
            values: list[ast.AST] = []
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                values = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
                text, values = str(node.left.value), [node.right]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "format"
                and isinstance(node.func.value, ast.Constant)
            ):
                text, values = str(node.func.value.value), [*node.args, *(k.value for k in node.keywords)]
            else:
                continue
            if SQL.search(text):
                found |= {(relative, ast.get_source_segment(source, v)) for v in values}
    return found


def test_sql_is_only_formatted_from_allowed_constants() -> None:
    assert sorted(interpolations() - ALLOWED) == []


def test_the_scan_sees_formatted_sql() -> None:
    """The scanner is not blind: chatdb's known, allowed interpolations are all found."""
    assert ALLOWED <= interpolations()
