"""The `nlpx` command line. Imports nothing heavy at module level: `nlpx --help` stays fast."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from nlpx.config import group_options
from nlpx.errors import UserError

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _groups_help() -> str:
    lines = [f"{group}: {', '.join(opts) or '(none yet)'}" for group, opts in group_options().items()]
    return ("Config groups and their options (choose with GROUP=OPTION, change any key with "
            "a.b=value):\n\n" + "\n\n".join(lines))


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="nlpx: NLP pretraining and fine-tuning experiments from composable configs.\n\n"
                       + _groups_help(), rich_markup_mode=None)

Overrides = typer.Argument(None, help="Hydra overrides, e.g. model.size=mini objective=mlm_nsp")


def _fail(message: str) -> None:
    typer.echo(f"nlpx: error: {message}", err=True)
    raise typer.Exit(2)


@app.command(context_settings=_EXTRA, help="Train (pretrain) a model.\n\n" + _groups_help())
def train(overrides: Optional[List[str]] = Overrides,
          multirun: bool = typer.Option(False, "-m", "--multirun",
                                        help="Hydra multirun: sweep comma-separated values")):
    overrides = list(overrides or [])
    try:
        if multirun:
            from nlpx.sweep import multirun as run_sweep

            run_sweep(overrides)
            return
        from nlpx.config import compose

        cfg = compose(overrides)
        _setup_logging()
        from nlpx.train.run import train as run_train

        summary = run_train(cfg, overrides)
    except UserError as e:
        _fail(str(e))
    if summary:
        _print_summary(summary)


@app.command(context_settings=_EXTRA, help="Print the composed config as YAML, with the parameter count.")
def config(overrides: Optional[List[str]] = Overrides):
    try:
        from nlpx.config import compose, to_yaml

        cfg = compose(list(overrides or []))
        from nlpx.models.count import count_parameters

        params, note = count_parameters(cfg)
    except UserError as e:
        _fail(str(e))
    typer.echo(to_yaml(cfg).rstrip())
    typer.echo(f"# parameters: {params:,}{note}")


def _setup_logging() -> None:
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("nlpx").setLevel(logging.INFO)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["final"].items():
        table.add_row(key, f"{value:.4f}")
    table.add_row("steps", str(summary["steps"]))
    table.add_row("tokens seen", f"{summary['tokens_seen']:,}")
    table.add_row("train seconds", f"{summary['train_seconds']:.1f}")
    table.add_row("parameters", f"{summary['parameters']:,}")
    console = Console()
    console.print(table)
    console.print(f"run directory: {summary['run_dir']}", soft_wrap=True)


def main() -> None:  # the console script; also `python -m nlpx.cli`
    app()


if __name__ == "__main__":
    main()
