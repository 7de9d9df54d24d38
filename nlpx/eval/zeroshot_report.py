"""A zero-shot evaluation's table (nlpx.recipes.eval_zeroshot): per task the accuracy, the chance
level and the majority share it is read against, the number of examples and the prompt; then the
mean over the tasks; the protocol under the table."""

from __future__ import annotations

import csv
import io

from nlpx.eval.glue_report import METRIC_NAMES


def _title(report: dict) -> str:
    from nlpx.eval.benchmarks import get_benchmark

    return get_benchmark(report["benchmark"]).title


def _prompt(row: dict) -> str:
    p = row["prompt"]
    mode = row.get("mode")
    template = p["nsp"] if mode == "zeroshot_nsp" else p["mlm"]
    words = f"; words {' / '.join(p['words'][:4])}{' ...' if len(p['words']) > 4 else ''}" if p["words"] else ""
    return (template or "built in (docs/clue.md)") + words


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    from nlpx.eval.benchmarks import get_benchmark

    bench = get_benchmark(report["benchmark"])
    header = ["Task", "Score", "Chance", "Majority", "Examples", "Prompt"]
    rows = []
    for r in report["tasks"]:
        name = bench.display(r["task"])
        if r["status"] != "ok":
            rows.append([name, r["status"], "", "", "", ""])
            continue
        score = f"{100 * r['score']:.1f}"
        if len(r["metrics"]) > 1:  # MRPC: the mean of F1 and accuracy
            score += " (" + " / ".join(f"{METRIC_NAMES.get(m, m)} {100 * v:.1f}" for m, v in r["metrics"].items()) + ")"
        rows.append([name, score, f"{100 * r['chance']:.1f}", f"{100 * r['majority']:.1f}",
                     str(r["examples"]), _prompt({**r, "mode": report["mode"]})])
    m = report["mean"]
    rows.append([f"Mean ({len(m['covered'])} tasks)", f"{100 * m['score']:.1f}", f"{100 * m['chance']:.1f}",
                 "", "", ""])
    return header, rows


def protocol_lines(report: dict) -> list[str]:
    head = "NSP head: score = P(prompt follows the text) (NSP-BERT)" if report["mode"] == "zeroshot_nsp" else \
        "MLM head: score = mean log-probability of the label word's tokens at its [MASK]s (PET)"
    return [f"Zero-shot ({report['mode']}): no training, no selection; {report['split']} split; {head}; "
            "the prediction is the best-scoring candidate (CLUEWSC: per text and pronoun).",
            "Scores x100 (the task's metrics, as fine-tuning reports them). Chance and Majority are accuracies: "
            "a uniform random guess among the candidates, and the share of the commonest gold label in the "
            "split (the best constant prediction, known only in hindsight)."]


def to_markdown(report: dict) -> str:
    header, rows = table_rows(report)
    out = [f"# {_title(report)} {report['split']} zero-shot ({report['mode']}): {report['model']}", "",
           "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    out += [""] + protocol_lines(report)
    return "\n".join(out) + "\n"


def to_csv(report: dict) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["task", "status", "acc", "chance", "majority", "examples", "nsp", "mlm",
                                             "words", "source"], lineterminator="\n")
    writer.writeheader()
    for r in report["tasks"]:
        row = {"task": r["task"], "status": r["status"]}
        if r["status"] == "ok":
            p = r["prompt"]
            row.update(acc=f"{100 * r['score']:.4f}", chance=f"{100 * r['chance']:.4f}",
                       majority=f"{100 * r['majority']:.4f}", examples=r["examples"], nsp=p["nsp"] or "",
                       mlm=p["mlm"] or "", words=" ".join(p["words"] or ()), source=p["source"])
        writer.writerow(row)
    writer.writerow({"task": "mean", "status": "covers " + " ".join(report["mean"]["covered"]),
                     "acc": f"{100 * report['mean']['score']:.4f}", "chance": f"{100 * report['mean']['chance']:.4f}"})
    return buf.getvalue()


def print_table(report: dict) -> None:
    from nlpx.eval.console import print_table as show

    header, rows = table_rows(report)
    show(f"{_title(report)} {report['split']} zero-shot ({report['mode']}): {report['model']}", header, rows,
         [*protocol_lines(report), f"run directory: {report['run_dir']}"], left=2)
