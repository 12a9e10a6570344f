"""The Typer application, its global options, and the one error boundary."""

from __future__ import annotations

import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer import _click as click  # Typer >= 0.29 ships its own copy of Click
from typer.core import TyperGroup

from chatdb.cli import _output as out
from chatdb.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, ChatdbError
from chatdb.jobs import stopping

if TYPE_CHECKING:
    from chatdb.db import Database

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 failure (database unreachable, not found, job failed); "
    "2 usage error (bad option or value); 3 another maintenance job holds the lock; "
    "130 interrupted."
)

_debug = False
_SURROGATES = re.compile("[\udc80-\udcff]")  # how Python decodes bytes that are not UTF-8


class ChatdbGroup(TyperGroup):
    """Runs every command inside one handler that turns failures into one line and an exit code."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        global _debug
        _debug = os.environ.get("CHATDB_DEBUG", "") not in ("", "0")
        # SIGTERM stops chatdb like Ctrl-C; a running job stops at its next safe point.
        with stopping.handling_signals():
            try:
                code = self._run(args, prog_name, complete_var, **extra)
            except KeyboardInterrupt:  # a stop request that came while a failure was being reported
                code = EXIT_INTERRUPTED
            if code == 0 and stopping.requests():
                # Told to stop, and whatever it hit was lost on the way (a cleanup callback): not a success.
                out.error("interrupted")
                code = EXIT_INTERRUPTED
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def _run(self, args: Any, prog_name: str | None, complete_var: str | None, **extra: Any) -> Any:
        given = sys.argv[1:] if args is None else list(args)
        for number, arg in enumerate(given, 1):
            if isinstance(arg, str) and _SURROGATES.search(arg):
                # Not quoted: it may be a database URL with its password.
                out.error(
                    f"argument {number} is not valid UTF-8 text "
                    "(chatdb reads its arguments, file names included, as UTF-8)"
                )
                return EXIT_USAGE
        try:
            code = super().main(
                args=args,
                prog_name=prog_name or "chatdb",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            if code == EXIT_INTERRUPTED:  # Typer turned a KeyboardInterrupt into this code without a word
                out.error("interrupted")
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "", file=sys.stdout)
            code = 0
        except click.exceptions.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            out.error(exc.format_message() + hint)
            code = EXIT_USAGE
        except typer.Abort:
            out.error("aborted")
            code = EXIT_FAILURE
        except click.exceptions.ClickException as exc:
            out.error(exc.format_message())
            code = exc.exit_code
        except ChatdbError as exc:
            _report(exc, exc.message)
            code = exc.exit_code
        except KeyboardInterrupt:
            out.error("interrupted")
            code = EXIT_INTERRUPTED
        except Exception as exc:  # the boundary: nothing escapes as a traceback
            translated = _translate(exc)
            if translated is not None:
                _report(exc, translated.message)
                code = translated.exit_code
            else:
                _report(exc, f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")
                code = EXIT_FAILURE
        return code


def _translate(exc: Exception) -> ChatdbError | None:
    if type(exc).__module__.split(".")[0] not in ("sqlalchemy", "psycopg"):
        return None
    from chatdb.db import translate_errors

    try:
        with translate_errors():
            raise exc
    except ChatdbError as translated:
        return translated
    except Exception:
        return None


def _report(exc: BaseException, message: str) -> None:
    if _debug:
        sys.stderr.write(out.redact("".join(traceback.format_exception(exc))))
    out.error(message)


@dataclass
class AppState:
    database_url: str | None = None
    _database: Database | None = field(default=None, repr=False)

    def database(self, *, announce: bool = True) -> Database:
        """The configured database (starting the embedded server when none is configured)."""
        if self._database is None:
            from chatdb.db import Database

            self._database = Database.from_options(self.database_url)
            if announce and self._database.settings.source == "embedded":
                from chatdb import embedded

                out.info(f"Using the embedded PostgreSQL in {embedded.data_dir()}")
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


app = typer.Typer(
    cls=ChatdbGroup,
    name="chatdb",
    help=(
        "Administer a chatbot's conversation store in PostgreSQL: migrate, inspect, archive, "
        "export, import and prune conversations.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="PostgreSQL URL. Default: $CHATDB_DATABASE_URL, then $DATABASE_URL, "
            "else the embedded PostgreSQL.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for failures.")
    ] = False,
) -> None:
    global _debug
    _debug = _debug or debug
    app_state = state(ctx)
    app_state.database_url = database_url
    ctx.call_on_close(app_state.close)
