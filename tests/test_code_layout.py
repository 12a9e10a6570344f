"""Where each kind of thing lives: SQL in its few modules, the command line on top, small modules.

docs/architecture.md states these rules; this file keeps them. A failure names
the module and the line, so the fix is to move the statement (or the import)
to where the rule says, not to widen the allow-list without a reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chatdb"
MAX_MODULE_LINES = 400

# Text that begins like a statement PostgreSQL runs.
STATEMENT = re.compile(
    r"^\s*(SELECT|INSERT\s+INTO|UPDATE\s+\w+(\s+AS\s+\w+)?\s+SET|DELETE\s+FROM|CREATE|DROP|ALTER|SHOW|SET\s|"
    r"ANALYZE|VACUUM|WITH|EXPLAIN|TRUNCATE|GRANT|COPY)\b"
)

# Where SQL text is written: the repositories' statements, the jobs' queries, the reports, the migrations.
SQL_HOMES = ("chatdb/repositories/statements.py", "chatdb/jobs/queries/", "chatdb/reports/", "chatdb/migrations.py")
# And these few statements of the layers below them, each the only one of its kind.
SQL_EXCEPTIONS = {
    "chatdb/db.py",  # SHOW server_version, once for every caller
    "chatdb/topology.py",  # the server's role (primary, standby) and the session's pid: the connection layer's facts
    "chatdb/embedded.py",  # CREATE DATABASE of the embedded server, before chatdb's schema exists
    "chatdb/bench/fixtures.py",  # the benchmark's own rows and its view of the server (no job, no report)
}


def modules() -> list[tuple[str, Path]]:
    return [(str(path.relative_to(ROOT)), path) for path in sorted(PACKAGE.rglob("*.py"))]


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def sql_texts(tree: ast.AST) -> list[tuple[int, str]]:
    skip = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        else:
            continue
        if STATEMENT.match(text):
            found.append((node.lineno, text.strip().splitlines()[0][:60]))
    return found


def sql_outside_its_homes() -> list[str]:
    return [
        f"{name}:{line}: {text}"
        for name, path in modules()
        if not name.startswith(SQL_HOMES) and name not in SQL_EXCEPTIONS
        for line, text in sql_texts(ast.parse(path.read_text()))
    ]


def test_sql_text_lives_only_in_its_modules() -> None:
    assert sql_outside_its_homes() == []


def test_the_sql_scan_sees_statements() -> None:
    """The scanner is not blind: it finds the statements of the modules where they belong."""
    for home in ("chatdb/repositories/statements.py", "chatdb/jobs/queries/seed.py", "chatdb/reports/stats.py"):
        assert sql_texts(ast.parse((ROOT / home).read_text())), home
    assert sql_texts(ast.parse('x = 1\nQUERY = "DELETE FROM messages WHERE id = %(id)s"\n'))
    assert not sql_texts(ast.parse('"""SELECT in a docstring is prose."""\n'))


def cli_imports() -> list[str]:
    found = []
    for name, path in modules():
        if name.startswith("chatdb/cli/") or name == "chatdb/__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(t == "chatdb.cli" or t.startswith("chatdb.cli.") for t in targets):
                found.append(f"{name}:{node.lineno}")
    return found


def test_nothing_below_the_command_line_imports_it() -> None:
    assert cli_imports() == []


def test_modules_are_small() -> None:
    long = {name: n for name, path in modules() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def sqlalchemy_imports(tree: ast.Module) -> tuple[bool, list[int]]:
    """Whether the module imports SQLAlchemy at its top, and the lines where functions import it."""

    def is_sqlalchemy(node: ast.AST) -> bool:
        return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy"

    at_top = any(is_sqlalchemy(node) for node in tree.body)
    inside = [
        node.lineno
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
        if is_sqlalchemy(node)
    ]
    return at_top, inside


def test_sqlalchemy_is_imported_lazily_only_where_it_is_not_loaded_already() -> None:
    """Function-level imports keep `chatdb --help` fast; in a module that loads SQLAlchemy anyway they only hide it."""
    both = []
    for name, path in modules():
        at_top, inside = sqlalchemy_imports(ast.parse(path.read_text()))
        if at_top and inside:
            both.append(f"{name}:{inside}")
    assert both == []
