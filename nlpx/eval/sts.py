"""The tables of `nlpx eval sts` (nlpx.recipes.eval_sts): markdown, the terminal table, the protocol
line, and the compact entry a summary keeps."""

from __future__ import annotations

import math


def compact(report: dict) -> dict:
    """What a summary keeps of an STS evaluation: the pooling, and Spearman/Pearson per data set
    (the first data set's Spearman is the score)."""
    rows = report["datasets"]
    return {"run_dir": report["run_dir"], "pooling": report["pooling"],
            "score": rows[0]["spearman"] if rows else None,
            "datasets": {r["name"]: {"spearman": r["spearman"], "pearson": r["pearson"], "pairs": r["pairs"],
                                     "examples_per_s": r["examples_per_s"]} for r in rows},
            "settings": {k: report["settings"][k] for k in ("pooling_used", "similarity", "scale", "max_length",
                                                              "batch_size", "split")}}


def protocol_lines(report: dict) -> list[str]:
    s = report["settings"]
    pooling = s["pooling"] + (" (no trained pooler: the first token)" if s["pooling_used"] != s["pooling"] else "")
    return [(f"Spearman and Pearson correlation x100 between the gold scores and the cosine similarity of the "
             f"two sentence vectors; model.pooling={pooling}; max length {s['max_length']} tokens "
             f"({s['max_length_from']}); batches of {s['batch_size']} sentences sorted by length; no gradient; "
             f"{s['device']}, float32.")]


def _num(x: float, digits: int = 2) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}f}"


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    header = ["Data", "Pairs", "Spearman", "Pearson", "examples/s"]
    rows = [[r["name"], f"{r['pairs']:,}", _num(r["spearman"]), _num(r["pearson"]), _num(r["examples_per_s"], 1)]
            for r in report["datasets"]]
    return header, rows


def to_markdown(report: dict) -> str:
    header, rows = table_rows(report)
    out = [f"# STS results: {report['model']} (pooling {report['pooling']})", "",
           "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    out += [""] + report["protocol"]
    return "\n".join(out) + "\n"


def print_table(report: dict) -> None:
    from nlpx.eval.console import print_table as show

    header, rows = table_rows(report)
    show(f"STS: cosine, pooling {report['pooling']}", header, rows,
         [f"model: {report['model']}", *report["protocol"], f"run directory: {report['run_dir']}"])
