"""NES vs ES vs GDES on real text: the metrics that tell the three embedding-sharing modes apart.

Each mode trains `nlpx train model=deberta objective=rtd objective.sharing=<mode>` (tiny, DeBERTaV3
defaults: generator with half the layers, λ = 50, temperature 1) on the Gutenberg books of
../shared/data (or $NLPX_DATA), WordPiece 8,000, batch 16 × 128, the same seed and data for every
mode, each in its own process, one after the other. Reported per mode: the validation curve of the
generator (MLM loss, accuracy) and the discriminator (RTD loss, accuracy, the all-"original"
accuracy 1 − replaced fraction, and the RTD loss minus the entropy of the replaced fraction: the
loss of the best token-blind guess, so < 0 means the discriminator uses the input), and the
per-source embedding gradients (norm from the MLM loss, from λ·RTD, their cosine) averaged over
the logged training steps of the last half of the run.

    .venv/bin/python benchmarks/rtd_modes.py [--steps 600] [--modes nes es gdes] [-- overrides...]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import REPO, cpu_stall_us, print_table, stall_pct, write_result


def data_dir() -> Path:
    import os

    return Path(os.environ.get("NLPX_DATA", REPO.parent / "shared" / "data"))


def one(mode: str, steps: int, cache: str, extra: list[str]) -> dict:
    """Runs in the child process."""
    from nlpx.config import compose
    from nlpx.run.loggers import read_metrics
    from nlpx.recipes.train import train

    with tempfile.TemporaryDirectory() as runs:
        overrides = ["model=deberta", "objective=rtd", f"objective.sharing={mode}", "data=text",
                     f"data.paths=[{data_dir() / 'corpus' / 'gutenberg'}]", "data.doc_split=file",
                     "data.vocab_size=8000", "data.seq_len=128", "data.batch_size=16", "model.size=tiny",
                     "logger=none", f"data.cache_dir={cache}", f"runs_dir={runs}", f"budget.max_steps={steps}",
                     f"trainer.val_check_interval={max(1, steps // 6)}", "trainer.limit_val_batches=16",
                     f"trainer.checkpoint_every_n_steps={steps}", "trainer.log_every_n_steps=10", *extra]
        s = train(compose(overrides), overrides)
        rows = read_metrics(Path(s["run_dir"]) / "metrics.jsonl")
    curve = [{k.removeprefix("val/"): r[k] for k in r if k.startswith("val/")} | {"step": r["step"]}
             for r in rows if "val/disc/rtd_loss" in r]
    late = [r for r in rows if "train/grad/emb_from_rtd" in r and r["step"] > steps // 2]
    grads = {k: sum(r[f"train/grad/{k}"] for r in late) / len(late)
             for k in ("emb_from_mlm", "emb_from_rtd", "emb_cosine") if late and f"train/grad/{k}" in late[0]}
    return {"mode": mode, "curve": curve, "grads": grads, "train_seconds": s["train_seconds"],
            "parameters": s["parameters"], "shared_tables": s["rtd"]["shared_tables"]}


def entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) if 0 < p < 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--modes", nargs="+", default=["nes", "es", "gdes"])
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.steps, args.cache, args.overrides)), flush=True)
        return
    if not (data_dir() / "corpus" / "gutenberg").is_dir():
        raise SystemExit(f"no Gutenberg corpus under {data_dir()}: set NLPX_DATA")
    cache = tempfile.mkdtemp(prefix="nlpx-bench-cache-")
    results = []
    for mode in args.modes:
        s0, t0 = cpu_stall_us(), time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--one", mode, "--steps", str(args.steps), "--cache", cache,
                              "--", *args.overrides], cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
        res = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[7:])
        res["cpu_stall_pct"] = stall_pct(s0, cpu_stall_us(), time.perf_counter() - t0)
        results.append(res)
        for c in res["curve"]:
            print(f"{mode:4s} step {c['step']:5d}  gen mlm_loss {c['gen/mlm_loss']:.3f} acc {c['gen/mlm_acc']:.3f}  "
                  f"disc rtd_loss {c['disc/rtd_loss']:.4f} acc {c['disc/rtd_acc']:.4f} "
                  f"(all-original {1 - c['disc/replaced_fraction']:.4f})", flush=True)
    rows = []
    for r in results:
        last = r["curve"][-1]
        g = r["grads"]
        rows.append([r["mode"], f"{last['gen/mlm_loss']:.3f}", f"{last['gen/mlm_acc']:.3f}",
                     f"{last['disc/rtd_loss']:.4f}",
                     f"{last['disc/rtd_loss'] - entropy(last['disc/replaced_fraction']):+.4f}",
                     f"{last['disc/rtd_acc']:.4f}", f"{1 - last['disc/replaced_fraction']:.4f}",
                     f"{g.get('emb_from_mlm', float('nan')):.3f}", f"{g.get('emb_from_rtd', float('nan')):.3f}",
                     f"{g.get('emb_cosine', float('nan')):+.3f}", f"{r['train_seconds']:.0f}"])
    print_table(["mode", "gen loss", "gen acc", "rtd loss", "− H(repl.)", "rtd acc", "all-orig.", "|g_mlm|",
                 "|g_rtd|", "cos", "train s"], rows)
    write_result("rtd_modes", {"settings": {"steps": args.steps, "overrides": args.overrides}, "results": results},
                 args.out)


if __name__ == "__main__":
    main()
