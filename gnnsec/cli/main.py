"""The ``gnnsec`` command. Subcommands are imported lazily so ``gnnsec db status`` never pays for torch."""

from __future__ import annotations

import importlib

import click

from gnnsec import __version__

# name -> (module, attribute, one-line help shown by `gnnsec --help` without importing the module)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "db": ("gnnsec.cli.db", "db", "Run a local Neo4j (start, stop, status, init)."),
    "ingest": ("gnnsec.cli.ingest", "ingest", "Load exported telemetry files into Neo4j."),
    "synth": ("gnnsec.cli.synth", "synth", "Generate a multi-cloud estate with labelled attacks."),
    "train": ("gnnsec.cli.train", "train", "Train the GNN on a snapshot of the graph."),
    "score": ("gnnsec.cli.score", "score", "Score each day against its history and write the scores to Neo4j."),
    "explain": ("gnnsec.cli.score", "explain", "Explain why an entity scored high."),
    "feedback": ("gnnsec.cli.score", "feedback", "Record an analyst verdict on entities."),
    "findings": ("gnnsec.cli.findings", "findings", "List what scoring flagged (table, JSON, OCSF)."),
    "query": ("gnnsec.cli.query", "query", "Run a canned Cypher hunt."),
    "eval": ("gnnsec.cli.evaluate", "evaluate", "Evaluate models honestly on labelled data."),
    "demo": ("gnnsec.cli.demo", "demo", "From nothing to scored findings in one command."),
}


class UserFacingError(click.ClickException):
    """A :class:`~gnnsec.errors.GnnsecError` as click shows errors: ``Error: <message>``, its exit code."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        setattr(self, "exit_code", int(getattr(error, "exit_code", 1)))  # noqa: B010 (a ClassVar in click's stubs)


class LazyGroup(click.Group):
    """A group whose subcommands live in their own modules and load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = SUBCOMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attribute, _ = spec
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attribute)

    def invoke(self, ctx: click.Context) -> object:
        """The one handler of errors the user can act on: a :class:`~gnnsec.errors.GnnsecError` (or the schema's
        ``SchemaError``) from any subcommand becomes a click error with its message and exit code, the cause
        chained for ``--traceback``. Anything else propagates as the bug it is."""
        from gnnsec.errors import GnnsecError
        from gnnsec.schema import SchemaError

        try:
            return super().invoke(ctx)
        except (GnnsecError, SchemaError) as exc:
            raise UserFacingError(exc) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gnnsec")
@click.option("-q", "--quiet", is_flag=True, help="Results and errors only: no progress lines or spinners.")
@click.option("-v", "--verbose", is_flag=True, help="More detail on stderr, e.g. which Neo4j server and database.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """gnnsec: graph-native threat detection for multi-cloud estates.

    \b
    Typical flow:
      gnnsec db start                      # a local Neo4j (or yours: --neo4j-uri)
      gnnsec ingest auto exports/          # telemetry into the master schema
      gnnsec train && gnnsec score         # learn normal, score everything
      gnnsec query top-anomalous-identities

    State (local database, models) lives in GNNSEC_HOME. --traceback (or GNNSEC_DEBUG=1) shows where an
    error came from.
    """
    from gnnsec.cli.common import VERBOSITY_KEY

    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose contradict each other; give one of them", ctx=ctx)
    ctx.meta[VERBOSITY_KEY] = -1 if quiet else 1 if verbose else 0


EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""The one exit-code map: 1 for an error gnnsec could name, 2 for a usage error, 130 for Ctrl-C."""


def main(argv: list[str] | None = None) -> int:
    """The ``gnnsec`` entry point: runs :func:`cli` and turns every exception into a message and an exit code
    from the map above, so no traceback reaches the user unless asked (``--traceback``, ``GNNSEC_DEBUG=1``).

    A :class:`~gnnsec.errors.GnnsecError` (or the schema's ``SchemaError``) reaches here as the click error
    :meth:`LazyGroup.invoke` made of it: its message, its ``exit_code``. Anything else is a bug in gnnsec and is
    called one.
    """
    import os
    import sys
    import traceback

    args = list(sys.argv[1:] if argv is None else argv)
    debug = (os.environ.get(name, "").strip().lower() for name in ("GNNSEC_DEBUG", "GNNSEC_TRACEBACK"))
    show_traceback = "--traceback" in args or any(value in {"1", "true", "yes"} for value in debug)
    args = [a for a in args if a != "--traceback"]
    try:
        cli.main(args=args, prog_name="gnnsec", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.ClickException as exc:
        if show_traceback and (exc.__cause__ is not None or exc.__context__ is not None):
            traceback.print_exception(exc)
        exc.show()
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("gnnsec: interrupted", err=True)
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except Exception as exc:  # a bug: name it, hide the traceback unless asked
        if show_traceback:
            raise
        click.echo(f"gnnsec: {_describe(exc)}", err=True)
        return EXIT_ERROR
    return EXIT_OK


def _describe(exc: BaseException) -> str:
    """A one-line message for an exception nothing else caught, with what to do where we know it."""
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("neo4j"):
        if name in {"ServiceUnavailable", "SessionExpired"}:
            return (f"Neo4j stopped answering ({exc}); check it with `gnnsec db status`, restart it with "
                    "`gnnsec db start`, then run the command again (a failed ingest wrote nothing of that file)")
        if name == "AuthError":
            return ("Neo4j refused the credentials: check NEO4J_USER and NEO4J_PASSWORD (or the variable "
                    "--neo4j-password-env-var names)")
        return f"Neo4j error {getattr(exc, 'code', name)}: {getattr(exc, 'message', None) or exc}"
    return f"unexpected {name}: {exc} (run again with --traceback to see where; please report it)"


if __name__ == "__main__":
    raise SystemExit(main())
