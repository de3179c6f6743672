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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gnnsec")
def cli() -> None:
    """gnnsec: graph-native threat detection for multi-cloud estates.

    \b
    Typical flow:
      gnnsec db start                      # a local Neo4j (or set NEO4J_URI)
      gnnsec ingest auto exports/          # telemetry into the master schema
      gnnsec train && gnnsec score         # learn normal, score everything
      gnnsec query top-anomalous-identities
    """


if __name__ == "__main__":
    cli()
