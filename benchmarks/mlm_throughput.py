"""MLM training throughput: nlpx (`model.size=mini objective=mlm`) vs a HF Trainer baseline.

Both sides train the same BertForMaskedLM configuration (sizes from nlpx's composed
cfg.model, vocabulary = the nlpx tokenizer's length) on the same packed examples
(PackedInstances: [CLS] 126 tokens of the stream [SEP]), same batch size, sequence length,
optimizer settings, fp32, and the same number of torch threads:

  nlpx      nlpx's real training path, `nlpx.train.run.train(cfg, overrides)`, in a fresh process;
            a Lightning callback (added to the Trainer that nlpx builds) timestamps every batch.
            The vocabulary projection runs only at the ~15% selected positions.
  baseline  transformers `Trainer` + `DataCollatorForLanguageModeling(mlm_probability=0.15)` on a
            torch Dataset of the unmasked packed examples; a `TrainerCallback` timestamps every
            step. BertForMaskedLM projects every position onto the whole vocabulary.

Tokens/s = non-pad tokens of the timed steps / time from the end of the last warm-up step to the
end of the last step (data loading + forward + backward + optimizer step, as a user sees it).
Each run is its own subprocess; runs alternate A B B A A B ... so drift of this shared machine
hits both sides alike. Reported: per-run tokens/s, the median per side and the ratio of medians.

Data: WikiText-2 (valid + test, the splits on disk) from $NLPX_DATA/corpus/wikitext-2
(NLPX_DATA defaults to ../shared/data relative to the repo root) with a 30k WordPiece vocabulary;
without it, data=synthetic (said so in the output).

    .venv/bin/python benchmarks/mlm_throughput.py [--repeats 3] [--steps 20] [--warmup-steps 5]
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

from _util import REPO, median, print_table, write_result

THIS = Path(__file__).resolve()


# -- settings shared by the parent and the workers --------------------------------------------

def data_choice(requested: str, vocab_size: int) -> tuple[list[str], str]:
    """(data overrides, description)."""
    root = Path(os.environ.get("NLPX_DATA", REPO.parent / "shared" / "data")).expanduser()
    wikitext = root / "corpus" / "wikitext-2"
    have = wikitext.is_dir() and any(wikitext.glob("*.txt"))
    if requested == "text" or (requested == "auto" and have):
        if not have:
            sys.exit(f"--data text: no WikiText-2 corpus at {wikitext}")
        return ([f"data=text", f"data.paths=[{wikitext}]", f"data.vocab_size={vocab_size}"],
                f"WikiText-2 ({wikitext}), WordPiece vocab_size={vocab_size}")
    note = "" if requested == "synthetic" else f" (WikiText-2 not found at {wikitext}: fell back)"
    return ["data=synthetic"], "synthetic corpus" + note


def base_overrides(args, data_overrides: list[str]) -> list[str]:
    never = args.steps + 1000  # no validation or checkpoint inside the timed steps
    return [f"model.size={args.size}", "objective=mlm", *data_overrides,
            f"data.seq_len={args.seq_len}", f"data.batch_size={args.batch_size}", "data.num_workers=0",
            "trainer=cpu", "trainer.precision=32-true", f"trainer.max_steps={args.steps}",
            f"trainer.val_check_interval={never}", f"trainer.checkpoint_every_n_steps={never}",
            "trainer.limit_val_batches=1", "trainer.accumulate_grad_batches=1",
            "logger=none", "experiment=bench_mlm_throughput"]


def steady_rate(ends: list[float], tokens: list[int], warmup: int) -> dict:
    """Tokens/s over steps warmup..N-1: time from the end of step warmup-1 to the end of step N-1."""
    n = len(ends)
    if n <= warmup or warmup < 1:
        raise SystemExit(f"need more steps ({n}) than warm-up steps ({warmup}), and warm-up >= 1")
    secs = ends[-1] - ends[warmup - 1]
    toks = sum(tokens[warmup:n])
    steps = [b - a for a, b in zip(ends[warmup - 1:-1], ends[warmup:])]
    return {"tokens_per_s": toks / secs, "seconds_timed": secs, "tokens_timed": toks,
            "steps_timed": n - warmup, "median_step_s": median(steps),
            "step_s": [round(s, 4) for s in steps]}


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


# -- workers (each in its own process) -------------------------------------------------------

def worker_nlpx(args, overrides: list[str]) -> dict:
    import torch
    from lightning.pytorch.callbacks import Callback

    import nlpx.train.trainer as trainer_mod
    from nlpx.config import compose
    from nlpx.train.run import train

    rec = {"ends": [], "tokens": [], "selected": []}

    class StepTimer(Callback):
        def on_train_start(self, trainer, pl_module):
            p = next(pl_module.model.parameters())
            rec.update(threads=torch.get_num_threads(), param_dtype=str(p.dtype),
                       parameters=sum(x.numel() for x in pl_module.model.parameters()),
                       precision=str(trainer.precision))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            rec["ends"].append(time.perf_counter())
            rec["tokens"].append(int(batch["attention_mask"].sum()))
            rec["selected"].append(int((batch["labels"] != -100).sum()))

    original = trainer_mod.build_trainer

    def build_trainer_with_timer(*a, **kw):
        trainer = original(*a, **kw)
        trainer.callbacks.append(StepTimer())
        return trainer

    trainer_mod.build_trainer = build_trainer_with_timer  # run.py imports it at call time
    with tempfile.TemporaryDirectory(prefix="nlpx-bench-") as tmp:
        overrides = [*overrides, f"runs_dir={tmp}"]
        cfg = compose(overrides)
        summary = train(cfg, overrides)
        rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines() if x]
    windows = [r["train/tokens_per_s"] for r in rows if "train/tokens_per_s" in r]
    out = steady_rate(rec["ends"], rec["tokens"], args.warmup_steps)
    out.update({k: rec.get(k) for k in ("threads", "param_dtype", "parameters", "precision")})
    out.update(steps=len(rec["ends"]), tokens_per_batch=median(rec["tokens"]),
               selected_per_batch=median(rec["selected"]), vocab_size=summary["data"]["vocab_size"],
               nlpx_logged_tokens_per_s_last=windows[-1] if windows else None,
               nlpx_summary_tokens_per_s=round(summary["tokens_seen"] / summary["train_seconds"], 1))
    return out


def worker_hf(args, overrides: list[str]) -> dict:
    import torch
    from transformers import (BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, Trainer,
                              TrainerCallback, TrainingArguments)
    from transformers.utils import logging as hf_logging

    from nlpx.config import compose
    from nlpx.data.instances import PackedInstances
    from nlpx.data.prepare import prepare_corpus

    hf_logging.set_verbosity_error()
    cfg = compose(overrides)
    prepared = prepare_corpus(cfg)  # the cache entry the nlpx runs use
    tok = prepared.tokenizer
    instances = PackedInstances(prepared.train, int(cfg.data.seq_len), tok.cls_token_id, tok.sep_token_id)

    class Packed(torch.utils.data.Dataset):
        def __len__(self):
            return len(instances)

        def __getitem__(self, i):
            return {"input_ids": instances.get(i)["input_ids"].tolist()}  # unmasked; the collator masks

    rec = {"ends": [], "tokens": [], "selected": []}
    mlm_collator = DataCollatorForLanguageModeling(tokenizer=tok, mlm=True, mlm_probability=0.15)

    def counting_collator(examples):
        batch = mlm_collator(examples)
        # batches are collated in step order (one per step, no workers), so index k = step k
        rec["tokens"].append(int(batch["attention_mask"].sum()))
        rec["selected"].append(int((batch["labels"] != -100).sum()))
        return batch

    class StepTimer(TrainerCallback):
        def on_train_begin(self, targs, state, control, model=None, **kw):
            p = next(model.parameters())
            rec.update(threads=torch.get_num_threads(), param_dtype=str(p.dtype),
                       parameters=sum(x.numel() for x in model.parameters()))

        def on_step_end(self, targs, state, control, **kw):
            rec["ends"].append(time.perf_counter())

    m, t = cfg.model, cfg.trainer
    config = BertConfig(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id,
        num_hidden_layers=int(m.num_hidden_layers), hidden_size=int(m.hidden_size),
        num_attention_heads=int(m.num_attention_heads), intermediate_size=int(m.intermediate_size),
        hidden_act=m.hidden_act, hidden_dropout_prob=float(m.hidden_dropout_prob),
        attention_probs_dropout_prob=float(m.attention_probs_dropout_prob),
        max_position_embeddings=int(m.max_position_embeddings), type_vocab_size=int(m.type_vocab_size),
        initializer_range=float(m.initializer_range), layer_norm_eps=float(m.layer_norm_eps),
        attn_implementation=m.attn_implementation)
    torch.manual_seed(int(cfg.seed))
    model = BertForMaskedLM(config)
    o = m.optimizer
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp:
        targs = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=int(cfg.data.batch_size),
            max_steps=int(t.max_steps), use_cpu=True, bf16=False, fp16=False,
            learning_rate=float(o.lr), weight_decay=float(o.weight_decay), adam_beta1=float(o.betas[0]),
            adam_beta2=float(o.betas[1]), adam_epsilon=float(o.eps), optim="adamw_torch",
            max_grad_norm=float(t.gradient_clip_val), lr_scheduler_type="linear",
            warmup_steps=float(t.warmup), gradient_accumulation_steps=1,
            logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none",
            dataloader_num_workers=0, dataloader_pin_memory=False, disable_tqdm=True,
            seed=int(cfg.seed), torch_compile=False)
        trainer = Trainer(model=model, args=targs, train_dataset=Packed(), data_collator=counting_collator,
                          callbacks=[StepTimer()])
        trainer.train()
    n = len(rec["ends"])
    out = steady_rate(rec["ends"], rec["tokens"][:n], args.warmup_steps)
    out.update({k: rec.get(k) for k in ("threads", "param_dtype", "parameters")})
    out.update(steps=n, tokens_per_batch=median(rec["tokens"][:n]),
               selected_per_batch=median(rec["selected"][:n]), vocab_size=len(tok),
               precision="fp32 (no autocast)")
    return out


def run_worker(args) -> None:
    set_threads(args.threads)
    overrides = json.loads(args.overrides_json)
    t0 = time.perf_counter()
    result = (worker_nlpx if args.worker == "nlpx" else worker_hf)(args, overrides)
    result.update(side=args.worker, worker_wall_s=round(time.perf_counter() - t0, 2),
                  peak_rss_mb=round(peak_rss_mb(), 1))
    Path(args.worker_out).write_text(json.dumps(result))


# -- the parent -------------------------------------------------------------------------------

def prepare_data(overrides: list[str]) -> dict:
    """Build (or hit) the corpus cache once, before any timed run."""
    from nlpx.config import compose
    from nlpx.data.prepare import prepare_corpus

    cfg = compose(overrides)
    prepared = prepare_corpus(cfg)
    return {"cache": str(prepared.path), "vocab_size": len(prepared.tokenizer), **{
        k: prepared.meta[k] for k in ("train_docs", "val_docs", "train_tokens", "val_tokens")}}


def spawn(side: str, args, overrides: list[str], tmp: str, r: int) -> dict:
    out = Path(tmp) / f"{side}-{r}.json"
    argv = [sys.executable, str(THIS), "--worker", side, "--worker-out", str(out),
            "--overrides-json", json.dumps(overrides), "--threads", str(args.threads),
            "--warmup-steps", str(args.warmup_steps), "--steps", str(args.steps)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    load_before = os.getloadavg()[0]
    proc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0 or not out.is_file():
        sys.exit(f"{side} run {r + 1} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    result = json.loads(out.read_text())
    result["load_avg_1min_before"] = round(load_before, 2)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per side (default 3)")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per run (default 20)")
    ap.add_argument("--warmup-steps", type=int, default=5,
                    help="first steps left out of the timing (default 5)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--size", default="mini", help="model.size preset (default mini)")
    ap.add_argument("--vocab-size", type=int, default=30000,
                    help="data.vocab_size for the WikiText tokenizer (default 30000)")
    ap.add_argument("--data", choices=("auto", "text", "synthetic"), default="auto",
                    help="auto: WikiText-2 if present, else synthetic")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads on both sides (default: torch.get_num_threads() here)")
    ap.add_argument("--out", help="result JSON path (default benchmarks/results/mlm_throughput.json)")
    ap.add_argument("--worker", choices=("nlpx", "hf"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--overrides-json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads is None:
        import torch

        args.threads = torch.get_num_threads()
    if args.worker:
        run_worker(args)
        return
    if args.steps <= args.warmup_steps:
        sys.exit("--steps must be larger than --warmup-steps")

    data_overrides, data_desc = data_choice(args.data, args.vocab_size)
    overrides = base_overrides(args, data_overrides)
    print(f"data: {data_desc}")
    print(f"settings: model.size={args.size} seq_len={args.seq_len} batch_size={args.batch_size} "
          f"steps={args.steps} (timed: the last {args.steps - args.warmup_steps}) "
          f"repeats={args.repeats} torch threads={args.threads} fp32")
    t0 = time.perf_counter()
    data_info = prepare_data(overrides)
    print(f"corpus: {data_info['train_tokens']:,} train tokens, vocabulary {data_info['vocab_size']:,} "
          f"(prepared in {time.perf_counter() - t0:.1f}s)\n", flush=True)

    runs: dict[str, list[dict]] = {"nlpx": [], "hf": []}
    with tempfile.TemporaryDirectory(prefix="mlm-bench-") as tmp:
        for r in range(args.repeats):
            order = ("nlpx", "hf") if r % 2 == 0 else ("hf", "nlpx")  # A B, B A, ...: cancels drift
            for side in order:
                res = spawn(side, args, overrides, tmp, r)
                runs[side].append(res)
                print(f"run {r + 1}/{args.repeats} {side:>4}: {res['tokens_per_s']:8,.0f} tokens/s  "
                      f"(median step {res['median_step_s']:.3f}s, {res['steps_timed']} steps timed, "
                      f"threads {res['threads']}, {res['param_dtype']}, peak RSS {res['peak_rss_mb']:.0f} MB, "
                      f"load {res['load_avg_1min_before']})", flush=True)

    med = {side: median([x["tokens_per_s"] for x in rs]) for side, rs in runs.items()}
    ratio = med["nlpx"] / med["hf"]
    pair_ratios = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(runs["nlpx"], runs["hf"])]
    # same work on both sides: same threads, dtype, parameters and tokens per batch in every run
    mismatch = [k for k in ("threads", "param_dtype", "parameters", "tokens_per_batch")
                if {x[k] for x in runs["nlpx"]} != {x[k] for x in runs["hf"]}]

    print()
    print_table(["", "nlpx", "HF Trainer"], [
        ["tokens/s per run", "  ".join(f"{x['tokens_per_s']:,.0f}" for x in runs["nlpx"]),
         "  ".join(f"{x['tokens_per_s']:,.0f}" for x in runs["hf"])],
        ["median tokens/s", f"{med['nlpx']:,.0f}", f"{med['hf']:,.0f}"],
        ["median step (s)", f"{median([x['median_step_s'] for x in runs['nlpx']]):.3f}",
         f"{median([x['median_step_s'] for x in runs['hf']]):.3f}"],
        ["tokens / selected per batch", f"{runs['nlpx'][0]['tokens_per_batch']:.0f} / "
         f"{median([x['selected_per_batch'] for x in runs['nlpx']]):.0f}",
         f"{runs['hf'][0]['tokens_per_batch']:.0f} / {median([x['selected_per_batch'] for x in runs['hf']]):.0f}"],
        ["parameters", f"{runs['nlpx'][0]['parameters']:,}", f"{runs['hf'][0]['parameters']:,}"],
        ["peak RSS (MB, median)", f"{median([x['peak_rss_mb'] for x in runs['nlpx']]):.0f}",
         f"{median([x['peak_rss_mb'] for x in runs['hf']]):.0f}"],
    ])
    print(f"\nratio of medians nlpx / HF Trainer: {ratio:.2f}x   (per pair: "
          f"{', '.join(f'{x:.2f}' for x in pair_ratios)})   target >= 2x: {'met' if ratio >= 2 else 'NOT met'}")
    if mismatch:
        print(f"WARNING: the two sides differ in {', '.join(mismatch)}: the comparison is not like for like")
    if any(x["load_avg_1min_before"] > (os.cpu_count() or 1) + 0.5 for rs in (runs["nlpx"], runs["hf"]) for x in rs):
        print("note: the machine was busy (1-min load average above the core count) during some runs; "
              "absolute tokens/s are low, the ratio is the number to quote")

    result = {
        "settings": {"model_size": args.size, "seq_len": args.seq_len, "batch_size": args.batch_size,
                     "steps": args.steps, "warmup_steps": args.warmup_steps, "repeats": args.repeats,
                     "threads": args.threads, "precision": "fp32", "data": data_desc,
                     "data_info": data_info, "nlpx_overrides": overrides + ["runs_dir=<tmp>"]},
        "runs": {"nlpx": runs["nlpx"], "hf_trainer": runs["hf"]},
        "median_tokens_per_s": {"nlpx": round(med["nlpx"], 1), "hf_trainer": round(med["hf"], 1)},
        "ratio_of_medians": round(ratio, 3), "pair_ratios": [round(x, 3) for x in pair_ratios],
        "target_ratio": 2.0, "target_met": ratio >= 2.0, "mismatched": mismatch,
    }
    path = write_result("mlm_throughput", result, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
