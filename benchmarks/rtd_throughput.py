"""Cost of one RTD training step (generator + discriminator) against MLM alone, same
discriminator size, on CPU: tokens/s of each, side by side in one process.

For each family (deberta, electra) and generator preset (deberta_v3: half the layers, same width;
electra: same layers, 1/4 width) the script builds, from the same nlpx configs as `nlpx train`,
the MLM model and the RTD pair (sharing gdes, and es), and times full training steps (forward,
backward, gradient clipping, AdamW step) on the same fixed batches: batch 16 x 128 tokens, 15%
selected with 80/10/10, vocabulary 8,000, fp32, no padding. Variants run interleaved in rounds,
alternating order, and each reports the median step time over its rounds. "grad stats" is an RTD
step on which the per-source embedding gradients are collected (the steps nlpx logs).

    .venv/bin/python benchmarks/rtd_throughput.py [--size mini] [--rounds 5] [--steps 8] [--models deberta electra]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import cpu_stall_us, median, print_table, stall_pct, write_result

VOCAB, BATCH, SEQ = 8000, 16, 128


def batches(n: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(5, VOCAB, (BATCH, SEQ), generator=g)
        labels = torch.full_like(ids, -100)
        pick = torch.rand(BATCH, SEQ, generator=g) < 0.15
        labels[pick] = ids[pick]
        masked = ids.clone()
        u = torch.rand(BATCH, SEQ, generator=g)
        masked[pick & (u < 0.8)] = 4
        swap = pick & (u >= 0.8) & (u < 0.9)
        masked[swap] = torch.randint(5, VOCAB, (int(swap.sum()),), generator=g)
        out.append({"input_ids": masked, "labels": labels, "attention_mask": torch.ones_like(ids),
                    "token_type_ids": torch.zeros_like(ids)})
    return out


def variant(model: str, size: str, objective: str, *extra: str):
    """(model, objective, optimizer) built as `nlpx train` builds them."""
    import torch
    from hydra.utils import get_class

    from nlpx.config import compose
    from nlpx.run.module import decay_groups

    cfg = compose([f"model={model}", f"model.size={size}", f"objective={objective}", *extra])
    torch.manual_seed(0)
    family = get_class(cfg.model._target_)(cfg.model)
    cls = get_class(cfg.objective._target_)
    net = family.build(family.hf_config(VOCAB, 0), False, cls.model_class(family))
    obj = cls(cfg.objective, family)
    obj.attach(net)
    params = list({id(p): p for p in [*net.parameters(), *obj.parameters()]}.values())
    opt = torch.optim.AdamW(decay_groups(params, 0.01), lr=1e-4)
    return net.train(), obj.train(), opt, params


def timed_steps(v, data, stats: bool) -> float:
    """Seconds per training step (median over the batches)."""
    import torch

    net, obj, opt, params = v
    trainer = SimpleNamespace(precision_plugin=SimpleNamespace(), world_size=1)
    times = []
    for batch in data:
        t0 = time.perf_counter()
        obj.log_due = stats
        opt.zero_grad(set_to_none=True)
        obj(net, batch)["loss"].backward()
        if stats:
            obj.optimizer_step_metrics(trainer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="mini")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--models", nargs="+", default=["deberta", "electra"])
    ap.add_argument("--out", default=None, help="result file (default benchmarks/results/rtd_throughput.json)")
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    data = batches(args.steps + 1)
    specs = {}
    for model in args.models:
        specs[(model, "mlm")] = (variant(model, args.size, "mlm"), False)
        for preset in ("deberta_v3", "electra"):
            for sharing in ("gdes", "es"):
                v = variant(model, args.size, "rtd", f"objective.sharing={sharing}",
                            f"objective.generator.preset={preset}")
                specs[(model, f"rtd {sharing} gen={preset}")] = (v, False)
            specs[(model, f"rtd gdes gen={preset}, grad stats")] = (
                specs[(model, f"rtd gdes gen={preset}")][0], True)
    for v, stats in specs.values():  # warm-up (allocator, first-call overheads)
        timed_steps(v, data[:1], stats)
    seconds = {k: [] for k in specs}
    stalls = []
    for r in range(args.rounds):
        keys = list(specs) if r % 2 == 0 else list(specs)[::-1]
        s0, t0 = cpu_stall_us(), time.perf_counter()
        for key in keys:
            v, stats = specs[key]
            seconds[key].append(timed_steps(v, data[1:], stats))
        stalls.append(stall_pct(s0, cpu_stall_us(), time.perf_counter() - t0))
        print(f"round {r}: cpu stall {stalls[-1]}%", flush=True)
    rows, results = [], []
    tokens = BATCH * SEQ
    for (model, name), ts in seconds.items():
        step = median(ts)
        base = median(seconds[(model, "mlm")])
        v = specs[(model, name)][0]
        n_params = sum(p.numel() for p in v[3])
        results.append({"model": model, "variant": name, "step_s_median": step, "step_s": ts,
                        "tokens_per_s": tokens / step, "ratio_to_mlm": base / step, "parameters": n_params})
        rows.append([model, name, f"{tokens / step:,.0f}", f"{base / step:.2f}", f"{n_params:,}"])
    print_table(["model", "variant", "tokens/s", "× MLM speed", "parameters"], rows, "llrrr")
    write_result("rtd_throughput", {"settings": {"size": args.size, "rounds": args.rounds, "steps": args.steps,
                                                 "batch": BATCH, "seq_len": SEQ, "vocab": VOCAB,
                                                 "threads": torch.get_num_threads()},
                                    "cpu_stall_pct_per_round": stalls, "results": results}, args.out)


if __name__ == "__main__":
    main()
