"""Pretraining cost per model family at size mini on CPU: tokens/s and peak memory.

Every family trains the same data (the embedded synthetic corpus, 4,000-token vocabulary: WordPiece,
or byte-level BPE for roberta and gpt2), batch 32 x 128, fp32, `budget.max_steps` steps; each
run is its own process (so peak RSS is that run's) and the families run in rounds, alternating the
order, so drift of this shared machine hits all alike. Reported per family: median tokens/s over
the rounds (non-pad tokens / seconds of training steps, nlpx's own train/tokens counter), the ratio
to BERT, peak RSS and the parameter count. Encoders train objective=mlm, gpt2 objective=clm; the
extra rows are BERT with the other objectives.

    .venv/bin/python benchmarks/family_throughput.py [--rounds 2] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import REPO, cpu_stall_us, median, print_table, stall_pct, write_result

RUNS = [("bert", "mlm"), ("roberta", "mlm"), ("albert", "mlm"), ("deberta", "mlm"), ("electra", "mlm"),
        ("roformer", "mlm"), ("gpt2", "clm"), ("bert", "mlm_nsp"), ("bert", "sop"), ("bert", "span")]


def one(model: str, objective: str, steps: int, cache: str) -> dict:
    """Runs in the child process: train, then report the summary and this process's peak RSS."""
    import resource

    from nlpx.config import compose
    from nlpx.recipes.train import train

    with tempfile.TemporaryDirectory() as runs:
        overrides = [f"model={model}", f"objective={objective}", "model.size=mini", "logger=none",
                     f"budget.max_steps={steps}", f"trainer.val_check_interval={steps}",
                     f"trainer.checkpoint_every_n_steps={steps}", "trainer.limit_val_batches=2",
                     "data.batch_size=32", "data.seq_len=128", f"data.cache_dir={cache}", f"runs_dir={runs}"]
        s = train(compose(overrides), overrides)
    return {"model": model, "objective": objective, "tokens_per_s": s["tokens_seen"] / s["train_seconds"],
            "parameters": s["parameters"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "OBJECTIVE"), help=argparse.SUPPRESS)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(*args.one, args.steps, args.cache)), flush=True)
        return
    cache = tempfile.mkdtemp(prefix="nlpx-bench-cache-")
    results = []
    for r in range(args.rounds):
        order = RUNS if r % 2 == 0 else RUNS[::-1]
        for model, objective in order:
            s0, t0 = cpu_stall_us(), time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--one", model, objective, "--steps", str(args.steps),
                                  "--cache", cache], cwd=REPO, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{model} {objective} failed:\n{out.stderr[-3000:]}")
            line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
            res = {**json.loads(line[7:]), "round": r}
            res["cpu_stall_pct"] = stall_pct(s0, cpu_stall_us(), time.perf_counter() - t0)
            results.append(res)
            print(f"round {r} {model:9s} {objective:8s} {res['tokens_per_s']:8.0f} tokens/s  "
                  f"{res['peak_rss_mb']:6.0f} MB  stall {res['cpu_stall_pct']}%", flush=True)
    rows, summary = [], {}
    base = median([x["tokens_per_s"] for x in results if (x["model"], x["objective"]) == ("bert", "mlm")])
    for model, objective in RUNS:
        xs = [x for x in results if (x["model"], x["objective"]) == (model, objective)]
        tps = median([x["tokens_per_s"] for x in xs])
        rss = max(x["peak_rss_mb"] for x in xs)
        summary[f"{model}/{objective}"] = {"tokens_per_s": tps, "ratio_to_bert": tps / base,
                                           "peak_rss_mb": rss, "parameters": xs[0]["parameters"]}
        rows.append([model, objective, f"{xs[0]['parameters']:,}", f"{tps:,.0f}", f"{tps / base:.2f}", f"{rss:,.0f}"])
    print_table(["model", "objective", "parameters", "tokens/s (median)", "vs bert/mlm", "peak RSS MB"], rows,
                "llrrrr")
    path = write_result("family_throughput", {"settings": {"size": "mini", "batch": 32, "seq_len": 128,
                                                           "steps": args.steps, "rounds": args.rounds},
                                              "summary": summary, "runs": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
