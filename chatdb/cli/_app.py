"""The Typer application, its global options, and the one error boundary."""

from __future__ import annotations

import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer import _click as click  # Typer >= 0.29 ships its own copy of Click
from typer.core import TyperGroup

from chatdb.cli import _output as out
from chatdb.cli import _progress
from chatdb.cli._options import FLAGS
from chatdb.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ChatdbError,
)
from chatdb.jobs import stopping

if TYPE_CHECKING:
    from chatdb.config import Settings
    from chatdb.db import Database

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 failure (database unreachable, not found, job failed); "
    "2 usage error (bad option or value); 3 another maintenance job holds the lock; "
    "130 interrupted; 141 stdout closed early (| head)."
)
# 128 + SIGPIPE: what git and coreutils exit with when the reader of their output goes away.
EXIT_CLOSED_PIPE = 141

_debug = False
_announced = False


class _Carried(Exception):
    """Ctrl-C or a closed stdout, carried past Typer (which would turn them into a silent exit 130 or 1)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


_SURROGATES = re.compile("[\udc80-\udcff]")  # how Python decodes bytes that are not UTF-8


class ChatdbGroup(TyperGroup):
    """Runs every command inside one handler that turns failures into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, BrokenPipeError) as exc:
            raise _Carried(exc) from exc

    def main(  # type: ignore[override]  # click's main() is untyped keyword soup; this one names them
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
            if code == EXIT_OK and stopping.requests():
                # Told to stop, and whatever it hit was lost on the way (a cleanup callback): not a success.
                code = _fail(None, "interrupted", EXIT_INTERRUPTED)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def _run(self, args: Any, prog_name: str | None, complete_var: str | None, **extra: Any) -> Any:
        global _announced
        _announced = False
        out.reset()
        _progress.reset()
        words = list(sys.argv[1:] if args is None else args)
        for number, arg in enumerate(words, 1):
            if isinstance(arg, str) and _SURROGATES.search(arg):
                # Not quoted: it may be a database URL with its password.
                return _fail(
                    None,
                    f"argument {number} is not valid UTF-8 text "
                    "(chatdb reads its arguments, file names included, as UTF-8)",
                    EXIT_USAGE,
                )
        _add_global_options(self)
        try:
            code = super().main(
                args=words,
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
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            code = _fail(exc, _usage_message(exc) + hint, EXIT_USAGE, json_mode="--json" in _before_dashes(words))
        except typer.Abort:
            code = _fail(None, "aborted", EXIT_FAILURE)
        except click.exceptions.ClickException as exc:
            code = _fail(exc, exc.format_message(), exc.exit_code)
        except ChatdbError as exc:
            message = exc.render(FLAGS)
            code = _fail(exc, message, exc.exit_code)
        except _Carried as carried:
            if isinstance(carried.original, BrokenPipeError):
                code = _closed_pipe(carried.original)
            else:
                code = _fail(None, "interrupted", EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            code = _fail(None, "interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError as exc:
            code = _closed_pipe(exc)
        except Exception as exc:  # the boundary: nothing escapes as a traceback
            translated = _translate(exc)
            if translated is not None:
                code = _fail(exc, translated.message, translated.exit_code)
            else:
                code = _fail(
                    exc, f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", EXIT_FAILURE
                )
        if isinstance(code, int) and code == EXIT_OK:
            code = _flush_stdout()
        return code


def _before_dashes(words: list[str]) -> list[str]:
    return words[: words.index("--")] if "--" in words else words


def _usage_message(exc: click.exceptions.UsageError) -> str:
    """Click's usage errors in chatdb's words: ``--limit: must be at least 1, got 0``."""
    if isinstance(exc, click.exceptions.BadParameter) and not isinstance(exc, click.exceptions.MissingParameter):
        param = exc.param
        if param is not None:
            names = [o for o in getattr(param, "opts", []) if o.startswith("--")] or [
                (param.metavar or param.name or "").upper()
            ]
            return f"{names[0]}: {exc.message}"
    return exc.format_message()


def _fail(exc: BaseException | None, message: str, code: int, *, json_mode: bool = False) -> int:
    """One red line on stderr, and with --json one JSON object on stdout saying the same."""
    if _debug and exc is not None:
        sys.stderr.write(out.redact("".join(traceback.format_exception(exc))))
    try:
        out.error(message)
        if (json_mode or out.json_requested) and not out.json_emitted:
            out.emit_json(
                {
                    "ok": False,
                    "error": out.one_line(message),
                    "exit_code": code,
                    "progress": _progress.progress_dict(),
                }
            )
    except BrokenPipeError as closed:
        return _closed_pipe(closed)
    return code


def _closed_pipe(exc: BrokenPipeError) -> int:
    """The reader went away: stop quietly (0 if it was our pager, 141 like git otherwise)."""
    from chatdb.cli._pager import PagerClosed

    try:  # later writes (and Python's own flush at exit) must not complain about the pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_OK if isinstance(exc, PagerClosed) else EXIT_CLOSED_PIPE


def _flush_stdout() -> int:
    try:
        sys.stdout.flush()
    except BrokenPipeError as exc:
        return _closed_pipe(exc)
    return EXIT_OK


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


@dataclass
class AppState:
    database_url: str | None = None
    no_pager: bool = False
    _database: Database | None = field(default=None, repr=False)

    def database(self, *, announce: bool = True) -> Database:
        """The configured database; the embedded server starts only when it is first used.

        Commands check all their arguments before using the database, so a usage
        error never starts a server or opens a connection.
        """
        if self._database is None:
            from chatdb.config import load_settings

            url = self.database_url

            def resolve() -> Settings:
                global _announced
                settings = load_settings(url)
                if announce and settings.source == "embedded" and not _announced:
                    from chatdb import embedded

                    _announced = True  # once per command, however many times it opens the database
                    out.info(f"Using the embedded PostgreSQL in {embedded.data_dir()}")
                return settings

            self._database = _deferred_database(resolve)
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None


def _deferred_database(resolve: Any) -> Database:
    from chatdb.db import Database

    class DeferredDatabase(Database):
        """A Database whose settings (and so the embedded server) are resolved on first use."""

        def __init__(self) -> None:
            self._settings: Settings | None = None
            super().__init__(None)  # type: ignore[arg-type]  # settings come on first use (the property below)

        @property
        def settings(self) -> Settings:
            if self._settings is None:
                self._settings = resolve()
            return self._settings

        @settings.setter
        def settings(self, value: Settings | None) -> None:
            self._settings = value

        def dispose(self) -> None:
            if self._settings is not None:
                super().dispose()

    return DeferredDatabase()


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def _version(value: bool) -> None:
    if value:
        import chatdb

        typer.echo(f"chatdb {chatdb.__version__}")
        raise typer.Exit()


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

_URL_HELP = "PostgreSQL URL. Default: $CHATDB_DATABASE_URL, then $DATABASE_URL, else the embedded PostgreSQL."
_DEBUG_HELP = "Show tracebacks for failures."
_PAGER_HELP = "Never page long output on a terminal (same as CHATDB_PAGER=)."


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None, typer.Option("--database-url", metavar="URL", help=_URL_HELP, show_default=False)
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help=_DEBUG_HELP)] = False,
    no_pager: Annotated[bool, typer.Option("--no-pager", help=_PAGER_HELP)] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print chatdb's version and exit.", is_eager=True, callback=_version),
    ] = False,
) -> None:
    global _debug
    _debug = _debug or debug
    app_state = state(ctx)
    app_state.database_url = database_url
    app_state.no_pager = no_pager
    ctx.call_on_close(app_state.close)


def _set_url(ctx: typer.Context, value: str | None) -> None:
    if value is not None:
        state(ctx).database_url = value


def _set_debug(value: bool) -> None:
    global _debug
    _debug = _debug or value


def _set_no_pager(ctx: typer.Context, value: bool) -> None:
    if value:
        state(ctx).no_pager = True


def _set_json(value: bool) -> bool:
    if value:
        out.json_requested = True
    return value


_GLOBAL_PARAMS: list[Any] = []


def _global_params() -> list[Any]:
    """The global options again, for after the command name (built by Typer from a stand-in command)."""
    if _GLOBAL_PARAMS:
        return _GLOBAL_PARAMS
    donor = typer.Typer()

    @donor.command()
    def stand_in(
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", metavar="URL", help=_URL_HELP, show_default=False, callback=_set_url),
        ] = None,
        debug: Annotated[bool, typer.Option("--debug", help=_DEBUG_HELP, callback=_set_debug)] = False,
        no_pager: Annotated[bool, typer.Option("--no-pager", help=_PAGER_HELP, callback=_set_no_pager)] = False,
    ) -> None:
        pass

    params = list(typer.main.get_command(donor).params)
    for param in params:
        param.expose_value = False
    _GLOBAL_PARAMS.extend(params)
    return _GLOBAL_PARAMS


def _add_global_options(group: Any) -> None:
    """Let ``--database-url``, ``--debug`` and ``--no-pager`` also follow the command name."""
    for command in group.commands.values():
        if command.short_help is None and command.help:
            # The whole first line in `chatdb --help`, not a summary cut at 45 characters.
            command.short_help = command.help.strip().split("\n\n")[0].replace("\n", " ")
        if isinstance(command, TyperGroup):
            _add_global_options(command)
            continue
        for param in command.params:
            if "--json" in getattr(param, "opts", ()) and param.callback is None:
                param.callback = lambda ctx, param, value: _set_json(value)
        if any("--database-url" in getattr(p, "opts", ()) for p in command.params):
            continue
        command.params += _global_params()
