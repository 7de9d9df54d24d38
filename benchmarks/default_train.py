"""The embedded demo, `nlpx train logger=none`, timed end to end in a subprocess.

Reports the wall time of the whole command (interpreter start to exit), the first and last
validation `val/mlm_loss` / `val/mlm_acc` from the run's metrics.jsonl, the steps and the
training tokens/s (non-pad tokens seen / training seconds, both from summary.json).

The run goes to a temporary runs_dir. By default the data cache is a fresh temporary folder too
(NLPX_CACHE), so the time includes what a first run pays (generating the synthetic corpus and
training its tokenizer); --warm-cache uses the normal cache instead.

    .venv/bin/python benchmarks/default_train.py [--warm-cache] [-- extra overrides ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _util import REPO, cpu_stall_us, print_table, stall_pct, venv_bin, write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm-cache", action="store_true",
                    help="use the normal data cache (NLPX_CACHE or .nlpx_cache) instead of a fresh one")
    ap.add_argument("--quiet", action="store_true", help="do not echo the run's output")
    ap.add_argument("--max-stall", type=float, default=10.0,
                    help="flag the run as contended above this %% of CPU stall (Linux PSI; default 10)")
    ap.add_argument("--out", help="result JSON path (default benchmarks/results/default_train.json)")
    ap.add_argument("overrides", nargs="*", help="extra overrides after `--`, e.g. budget.max_steps=100")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="nlpx-bench-") as tmp:
        runs_dir = Path(tmp) / "runs"
        env = dict(os.environ)
        if not args.warm_cache:
            env["NLPX_CACHE"] = str(Path(tmp) / "cache")
        argv = [venv_bin("nlpx"), "train", "logger=none", f"runs_dir={runs_dir}", *args.overrides]
        shown = "nlpx train logger=none " + " ".join(["runs_dir=<tmp>", *args.overrides])
        print(f"running: {shown}  (data cache: {'warm' if args.warm_cache else 'fresh, temporary'})",
              flush=True)
        load_before, stall_before = os.getloadavg(), cpu_stall_us()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if not args.quiet:
                print("  | " + line, end="", flush=True)
        rc = proc.wait()
        wall = time.perf_counter() - t0
        load_after, stall = os.getloadavg(), stall_pct(stall_before, cpu_stall_us(), wall)
        if rc != 0:
            sys.exit(f"nlpx train failed (exit {rc}):\n{''.join(lines[-40:])}")
        summaries = list(runs_dir.glob("*/*/summary.json"))
        if len(summaries) != 1:
            sys.exit(f"expected one run directory under {runs_dir}, found {len(summaries)} summary.json")
        run_dir = summaries[0].parent
        summary = json.loads(summaries[0].read_text())
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]

    val = [r for r in rows if "val/mlm_loss" in r]
    if not val:
        sys.exit("metrics.jsonl has no val/mlm_loss rows")
    first, last = val[0], val[-1]
    windows = [r["train/tokens_per_s"] for r in rows if "train/tokens_per_s" in r]
    tokens_per_s = summary["tokens_seen"] / summary["train_seconds"] if summary["train_seconds"] else None
    result = {
        "overrides": ["logger=none", "runs_dir=<tmp>", *args.overrides],
        "data_cache": "warm" if args.warm_cache else "cold",
        "wall_seconds": round(wall, 2),
        "train_wall_seconds": summary.get("wall_seconds"),  # inside train(): data prep + fit + val + export
        "train_seconds": summary["train_seconds"],  # training batches only (no validation)
        "steps": summary["steps"], "tokens_seen": summary["tokens_seen"],
        "tokens_per_s": round(tokens_per_s, 1) if tokens_per_s else None,
        "last_logged_tokens_per_s_window": windows[-1] if windows else None,
        "parameters": summary["parameters"], "data": summary["data"],
        "val_first": {"step": first["step"], "val/mlm_loss": first["val/mlm_loss"],
                      "val/mlm_acc": first.get("val/mlm_acc")},
        "val_last": {"step": last["step"], "val/mlm_loss": last["val/mlm_loss"],
                     "val/mlm_acc": last.get("val/mlm_acc")},
        "val_history": [{"step": r["step"], "val/mlm_loss": r["val/mlm_loss"],
                         "val/mlm_acc": r.get("val/mlm_acc")} for r in val],
        "final": summary["final"], "versions": summary.get("versions"),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "cpu_stall_pct": stall,  # share of the run in which some task waited for a CPU (Linux PSI)
    }
    print()
    print_table(["", "value"], [
        ["command wall time", f"{wall:.1f} s"],
        ["  of which train() (data, fit, val, export)", f"{summary.get('wall_seconds', float('nan')):.1f} s"],
        ["  of which training batches", f"{summary['train_seconds']:.1f} s"],
        ["CPU stall (other work competing)", "n/a" if stall is None else f"{stall:.0f}%"],
        ["steps", summary["steps"]],
        ["tokens seen", f"{summary['tokens_seen']:,}"],
        ["tokens/s (tokens seen / training s)", f"{tokens_per_s:,.0f}" if tokens_per_s else "n/a"],
        [f"first val/mlm_loss (step {first['step']})", f"{first['val/mlm_loss']:.4f}"],
        [f"last val/mlm_loss (step {last['step']})", f"{last['val/mlm_loss']:.4f}"],
        [f"first val/mlm_acc (step {first['step']})", f"{first.get('val/mlm_acc', float('nan')):.4f}"],
        [f"last val/mlm_acc (step {last['step']})", f"{last.get('val/mlm_acc', float('nan')):.4f}"],
    ], "lr")
    busy = stall is not None and stall > args.max_stall
    if busy:
        print(f"\nnote: other work competed for the CPU during {stall:.0f}% of the run (Linux PSI CPU "
              "stall): the times above are inflated; run again on a quiet machine")
    result["machine_busy"] = busy
    path = write_result("default_train", result, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
