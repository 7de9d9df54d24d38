"""Cost of sparse attention against full attention at 512 / 1024 / 2048 tokens: time and peak
memory of one training step (forward + backward of the MLM loss), side by side.

Arms, all mini (4 layers x 256, 4 heads) built by nlpx's families, batch 2, random tokens from a
vocabulary of 1,000 (small, so that the output layer's per-position cost does not hide attention's):
  full         model=bert (SDPA attention: on the CPU a fused kernel that never holds the n x n
               matrix, so its memory is linear in n too; its time is still quadratic)
  full_eager   model=bert model.attn_implementation=eager (the n x n scores and probabilities held)
  local_mask   model=bert model.attention_pattern=local model.window=32: a mask, so the same work
               (and with a mask SDPA falls back from its fused kernel)
  longformer   model=longformer model.window=32 (Longformer's attention_window 64)
  bigbird      model=bigbird (block 16, 1 random block)
Each (arm, length) runs in its own process: build the model, reset the kernel's peak-RSS mark
(/proc/self/clear_refs), one step, then peak memory = the process's high-water RSS minus its RSS
before the step (what the step allocated: activations, attention matrices, gradients); then
`--steps` timed steps, median. Time ratios are to `full` at the same length, all arms of a length
run back to back. Memory is exact per process; times drift with the machine (the CPU stall
column is Linux PSI: the share of the run other work waited for a core).

.venv/bin/python benchmarks/attention_cost.py [--lengths 512 1024 2048] [--steps 3] [--batch 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _util import cpu_stall_us, median, print_table, stall_pct, write_result  # noqa: E402

ARMS = {
    "full": ["model=bert"],
    "full_eager": ["model=bert", "model.attn_implementation=eager"],
    "local_mask": ["model=bert", "model.attention_pattern=local", "model.window=32"],
    "longformer": ["model=longformer", "model.window=32"],
    "bigbird": ["model=bigbird"],
}
VOCAB = 1000


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def one(arm: str, length: int, steps: int, batch: int) -> dict:
    """Runs in a child process: build, one measured step, then timed steps."""
    import gc

    import torch

    from hydra.utils import get_class

    from nlpx.config import compose

    class Tok:
        pad_token_id, cls_token_id, sep_token_id = 0, 2, 3

        def __len__(self):
            return VOCAB

    cfg = compose([*ARMS[arm], "model.size=mini", f"model.max_position_embeddings={length}",
                   "model.hidden_dropout_prob=0", "model.attention_probs_dropout_prob=0"], runnable=False)
    family = get_class(cfg.model._target_)(cfg.model)
    torch.manual_seed(0)
    model = family.pretraining_model(Tok(), nsp=False)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (batch, length), generator=g)
    labels = torch.full_like(ids, -100)
    pick = torch.rand(batch, length, generator=g) < 0.15
    labels[pick] = ids[pick]
    mask = torch.ones_like(ids)

    def step():
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    before = _status_kb("VmRSS")
    step()
    peak = _status_kb("VmHWM") - before
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"arm": arm, "length": length, "step_s": median(times), "times": times, "peak_mb": peak / 1024,
            "attention": str(getattr(model.config, "attention_type", "") or "")}


def run_child(arm: str, length: int, steps: int, batch: int) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"import attention_cost as b; print(json.dumps(b.one({arm!r}, {length}, {steps}, {batch})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows, table = [], []
    for length in args.lengths:
        stall0, t0 = cpu_stall_us(), time.perf_counter()
        results = {arm: run_child(arm, length, args.steps, args.batch) for arm in ARMS}
        stall = stall_pct(stall0, cpu_stall_us(), time.perf_counter() - t0)
        for arm, r in results.items():
            r["time_vs_full"] = r["step_s"] / results["full"]["step_s"]
            r["memory_vs_full"] = r["peak_mb"] / results["full"]["peak_mb"]
            r["cpu_stall_pct"] = stall
            rows.append(r)
            table.append([arm, length, f"{r['step_s']:.3f}", f"{r['time_vs_full']:.2f}x", f"{r['peak_mb']:.0f}",
                          f"{r['memory_vs_full']:.2f}x", stall])
    print_table(["arm", "length", "step s (median)", "time vs full", "peak MB", "memory vs full", "CPU stall %"],
                table)
    growth = {}
    for arm in ARMS:
        mem = {r["length"]: r["peak_mb"] for r in rows if r["arm"] == arm}
        lo, hi = min(mem), max(mem)
        growth[arm] = {"length_ratio": hi / lo, "memory_ratio": mem[hi] / mem[lo]}
        print(f"{arm}: length x{hi / lo:.0f} -> peak memory x{mem[hi] / mem[lo]:.2f}")
    path = write_result("attention_cost", {"settings": {"size": "mini", "batch": args.batch, "steps": args.steps,
                                                         "vocab": VOCAB},
                                            "rows": rows, "growth": growth}, args.out)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
