"""RTD under mixed precision on a GPU: the per-source embedding gradients agree across fp32,
bf16-mixed and fp16-mixed (where the GradScaler scales the loss and nlpx unscales the RTD part
it reads at the lookup), and the training speed of RTD against MLM in each precision.

Each run is `nlpx train model=deberta objective=rtd trainer=gpu trainer.precision=P` from the
same seed on the embedded synthetic data, logging every step; the gradients of step 1 come from
identical weights and batches, so they differ only by rounding. Needs a CUDA GPU.

    python benchmarks/rtd_precision.py [--steps 40] [--size small] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def train(objective: str, precision: str, steps: int, size: str, runs: str) -> dict:
    from nlpx.config import compose
    from nlpx.run.loggers import read_metrics
    from nlpx.recipes.train import train as run_train

    overrides = ["model=deberta", f"objective={objective}", "trainer=gpu", f"trainer.precision={precision}",
                 f"model.size={size}", "logger=none", "trainer.log_every_n_steps=1", f"budget.max_steps={steps}",
                 f"trainer.val_check_interval={steps}", "trainer.limit_val_batches=4",
                 f"trainer.checkpoint_every_n_steps={steps}", "data.batch_size=32", "data.seq_len=128",
                 f"runs_dir={runs}"]
    s = run_train(compose(overrides), overrides)
    rows = read_metrics(Path(s["run_dir"]) / "metrics.jsonl")
    grads = [{k: r[k] for k in r if k.startswith("train/grad/")} | {"step": r["step"]}
             for r in rows if "train/grad/emb_from_rtd" in r]
    return {"objective": objective, "precision": precision, "tokens_per_s": s["tokens_seen"] / s["train_seconds"],
            "final": s["final"], "grads": grads}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", default="small")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("rtd_precision: needs a CUDA GPU")
    results = []
    with tempfile.TemporaryDirectory() as runs:
        for precision in PRECISIONS:
            for objective in ("mlm", "rtd"):
                res = train(objective, precision, args.steps, args.size, runs)
                results.append(res)
                first = res["grads"][0] if res["grads"] else {}
                print(f"{precision:10s} {objective}: {res['tokens_per_s']:,.0f} tokens/s; step-1 grads "
                      + ", ".join(f"{k.removeprefix('train/grad/')} {v:.5f}" for k, v in first.items() if k != "step"),
                      flush=True)
    ref = next(r for r in results if r["objective"] == "rtd" and r["precision"] == "32-true")["grads"][0]
    for r in results:
        if r["objective"] == "rtd":
            g = r["grads"][0]
            rel = {k: abs(g[k] - ref[k]) / max(abs(ref[k]), 1e-12) for k in ref if k != "step"}
            print(f"{r['precision']:10s} step-1 relative difference to fp32: "
                  + ", ".join(f"{k.removeprefix('train/grad/')} {v:.4f}" for k, v in rel.items()))
    for precision in PRECISIONS:
        mlm = next(r for r in results if r["objective"] == "mlm" and r["precision"] == precision)
        rtd = next(r for r in results if r["objective"] == "rtd" and r["precision"] == precision)
        print(f"{precision:10s} RTD speed / MLM speed: {rtd['tokens_per_s'] / mlm['tokens_per_s']:.2f}")
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "steps": args.steps,
           "size": args.size, "results": results}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
