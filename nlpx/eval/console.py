"""The terminal table every `nlpx eval` command prints (rich), and the lines under it."""

from __future__ import annotations


def print_table(title: str, header: list[str], rows: list[list[str]], lines: list[str], *, left: int = 1) -> None:
    """`left`: how many leading columns are text (left-aligned); the rest are numbers."""
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    # a log file gets the whole table on one line per row, not wrapped at 80 columns
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for line in lines:
        console.print(line, soft_wrap=True)
