"""MLM training throughput: nlpx (`model.size=mini objective=mlm`) vs a HF Trainer baseline.

Both sides train the same BertForMaskedLM configuration (sizes from nlpx's composed
cfg.model, vocabulary = the nlpx tokenizer's length) on the same packed examples
(PackedInstances: [CLS] 126 tokens of the stream [SEP]), same batch size, sequence length,
optimizer settings, precision (one row each: fp32 and bf16-mixed by default), and the same
number of torch threads:

  nlpx      nlpx's real training path, `nlpx.recipes.train.train(cfg, overrides)`, in a fresh process;
            a Lightning callback (added to the Trainer that nlpx builds) timestamps every batch.
            The vocabulary projection runs only at the ~15% selected positions.
  baseline  transformers `Trainer` + `DataCollatorForLanguageModeling(mlm_probability=0.15)` on a
            torch Dataset of the unmasked packed examples; a `TrainerCallback` timestamps every
            step. BertForMaskedLM projects every position onto the whole vocabulary.

Tokens/s = non-pad tokens of the timed steps / time from the end of the last warm-up step to the
end of the last step (data loading + forward + backward + optimizer step, as a user sees it).
Each run is its own subprocess; runs alternate A B B A A B ... so drift of this shared machine
hits both sides alike. Reported: per-run tokens/s, the median per side and the ratio of medians.
A pair during which other work competed for the CPU (Linux PSI CPU stall above --max-stall) is
kept in the JSON but left out of the medians and replaced by an extra pair (--max-extra-pairs):
with 2 threads on 2 shared cores, contention slows both sides to a similar crawl and the ratio
would mean nothing.

FLOP-ratio bound: both sides' FLOPs of one training step are counted (torch.utils.flop_counter,
forward + backward, per position; nlpx's from its run summary). HF projects every position onto
the vocabulary, nlpx only the selected ones, so at equal hardware efficiency nlpx's speed-up can
be at most HF's FLOPs / nlpx's FLOPs; the script prints that bound and the share of it reached.

--compile: both sides with torch.compile (nlpx: the encoder and the MLM head, `nn.Module.compile`; HF:
`TrainingArguments(torch_compile=True)`); compilation falls in the warm-up steps, so give enough.
--accelerator gpu (with --size base --precision bf16-mixed): the GPU comparison, with MFU from
nlpx's table of GPU peaks (nlpx/run/flops.py) for both sides.

Data: WikiText-2 (valid + test, the splits on disk) from $NLPX_DATA/corpus/wikitext-2
(NLPX_DATA defaults to ../shared/data relative to the repo root) with a 30k WordPiece vocabulary;
without it, data=synthetic (said so in the output).

    .venv/bin/python benchmarks/mlm_throughput.py [--repeats 3] [--steps 20] [--warmup-steps 5]
        [--precision 32-true bf16-mixed] [--compile] [--accelerator cpu|gpu] [--size mini]
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

from _util import REPO, cpu_stall_us, median, print_table, stall_pct, write_result

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
        return (["data=text", f"data.paths=[{wikitext}]", f"data.vocab_size={vocab_size}"],
                f"WikiText-2 ({wikitext}), WordPiece vocab_size={vocab_size}")
    note = "" if requested == "synthetic" else f" (WikiText-2 not found at {wikitext}: fell back)"
    return ["data=synthetic"], "synthetic corpus" + note


def base_overrides(args, data_overrides: list[str]) -> list[str]:
    never = args.steps + 1000  # no validation or checkpoint inside the timed steps
    return [f"model.size={args.size}", "objective=mlm", *data_overrides,
            f"data.seq_len={args.seq_len}", f"data.batch_size={args.batch_size}", "data.num_workers=0",
            f"trainer={args.accelerator}", f"budget.max_steps={args.steps}",
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

    import nlpx.run.trainer as trainer_mod
    from nlpx.config import compose
    from nlpx.recipes.train import train

    rec = {"ends": [], "tokens": [], "selected": []}

    class StepTimer(Callback):
        def setup(self, trainer, pl_module, stage):
            if args.compile and stage == "fit":
                # the objective calls the encoder and the MLM head, not the model's own forward:
                # compile those (in place: parameter names, and so checkpoints, unchanged)
                for part in pl_module.model.children():
                    part.compile()

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

    trainer_mod.build_trainer = build_trainer_with_timer  # the recipe imports it at call time
    import nlpx.recipes.pretrain as run_mod

    if hasattr(run_mod, "build_trainer"):  # in case the recipe ever imports it at module level
        run_mod.build_trainer = build_trainer_with_timer
    with tempfile.TemporaryDirectory(prefix="nlpx-bench-") as tmp:
        overrides = [*overrides, f"runs_dir={tmp}"]
        cfg = compose(overrides)
        summary = train(cfg, overrides)
        rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines() if x]
    if not rec["ends"]:
        raise SystemExit("the step timer never ran: nlpx.recipes.pretrain no longer builds its Trainer "
                         "through nlpx.run.trainer.build_trainer; update benchmarks/mlm_throughput.py")
    windows = [r["train/tokens_per_s"] for r in rows if "train/tokens_per_s" in r]
    out = steady_rate(rec["ends"], rec["tokens"], args.warmup_steps)
    out.update({k: rec.get(k) for k in ("threads", "param_dtype", "parameters", "precision")})
    out.update(steps=len(rec["ends"]), tokens_per_batch=median(rec["tokens"]),
               selected_per_batch=median(rec["selected"]), vocab_size=summary["data"]["vocab_size"],
               nlpx_logged_tokens_per_s_last=windows[-1] if windows else None,
               nlpx_summary_tokens_per_s=round(summary["tokens_seen"] / summary["train_seconds"], 1),
               flops_per_token=summary["flops"]["per_token"], peak_flops=summary["flops"]["peak_per_s"])
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
    # FLOPs of one training step on a batch as the Trainer collates it, per position
    from nlpx.run.flops import count_step_flops

    first = mlm_collator([Packed()[i] for i in range(int(cfg.data.batch_size))])
    flops_per_token = count_step_flops(lambda: model(**first).loss, model.parameters()) / first["input_ids"].numel()
    o = cfg.optim
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp:
        targs = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=int(cfg.data.batch_size),
            max_steps=int(cfg.budget.max_steps), use_cpu=args.accelerator == "cpu",
            bf16=args.precision.startswith("bf16"), fp16=args.precision.startswith("16"),
            learning_rate=float(o.lr), weight_decay=float(o.weight_decay), adam_beta1=float(o.betas[0]),
            adam_beta2=float(o.betas[1]), adam_epsilon=float(o.eps), optim="adamw_torch",
            max_grad_norm=float(t.gradient_clip_val), lr_scheduler_type="linear",
            warmup_steps=float(o.warmup), gradient_accumulation_steps=1,
            logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none",
            dataloader_num_workers=0, dataloader_pin_memory=False, disable_tqdm=True,
            seed=int(cfg.seed), torch_compile=args.compile)
        trainer = Trainer(model=model, args=targs, train_dataset=Packed(), data_collator=counting_collator,
                          callbacks=[StepTimer()])
        trainer.train()
    n = len(rec["ends"])
    out = steady_rate(rec["ends"], rec["tokens"][:n], args.warmup_steps)
    out.update({k: rec.get(k) for k in ("threads", "param_dtype", "parameters")})
    out.update(steps=n, tokens_per_batch=median(rec["tokens"][:n]),
               selected_per_batch=median(rec["selected"][:n]), vocab_size=len(tok),
               precision=args.precision, flops_per_token=flops_per_token)
    return out


def run_worker(args) -> None:
    args.precision = args.precision[0]  # a worker runs one row
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


def spawn(side: str, args, overrides: list[str], tmp: str, tag: str, precision: str) -> dict:
    out = Path(tmp) / f"{side}-{tag}.json"
    argv = [sys.executable, str(THIS), "--worker", side, "--worker-out", str(out),
            "--overrides-json", json.dumps(overrides), "--threads", str(args.threads),
            "--warmup-steps", str(args.warmup_steps), "--steps", str(args.steps), "--precision", precision,
            "--accelerator", args.accelerator, *(["--compile"] if args.compile else [])]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    load_before, stall_before, t0 = os.getloadavg()[0], cpu_stall_us(), time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    wall, stall_after = time.perf_counter() - t0, cpu_stall_us()
    if proc.returncode != 0 or not out.is_file():
        sys.exit(f"{side} run {tag} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    result = json.loads(out.read_text())
    result["load_avg_1min_before"] = round(load_before, 2)
    # share of the run's wall time in which some task on the machine waited for a CPU: ~0 when
    # this run had the cores to itself, high when other work competed with it
    result["cpu_stall_pct"] = stall_pct(stall_before, stall_after, wall)
    return result


def describe(res: dict) -> str:
    stall = "n/a" if res["cpu_stall_pct"] is None else f"{res['cpu_stall_pct']:.0f}%"
    return (f"{res['tokens_per_s']:8,.0f} tokens/s  (median step {res['median_step_s']:.3f}s, "
            f"{res['steps_timed']} steps timed, threads {res['threads']}, {res['param_dtype']}, "
            f"peak RSS {res['peak_rss_mb']:.0f} MB, CPU stall {stall}, load {res['load_avg_1min_before']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="run pairs (nlpx + baseline) wanted (default 3)")
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
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="extra nlpx override for both sides (the baseline reads cfg.model and "
                         "cfg.trainer too), e.g. model.hidden_dropout_prob=0; repeatable")
    ap.add_argument("--max-stall", type=float, default=10.0,
                    help="a pair in which a run's CPU stall (Linux PSI: time some task waited for "
                         "a CPU) exceeds this %% is contended: kept in the JSON, left out of the "
                         "medians, and replaced by an extra pair (default 10; <0 disables)")
    ap.add_argument("--max-extra-pairs", type=int, default=2,
                    help="extra pairs allowed to replace contended ones (default 2)")
    ap.add_argument("--precision", nargs="+", default=["32-true", "bf16-mixed"],
                    help="Lightning precision names, one row each (default: 32-true bf16-mixed)")
    ap.add_argument("--compile", action="store_true", help="torch.compile on both sides")
    ap.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu",
                    help="cpu (default) or gpu (nlpx trainer=gpu; HF on CUDA)")
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
    os.chdir(REPO)  # the parent and the workers must resolve the same relative data cache
    if args.steps <= args.warmup_steps:
        sys.exit("--steps must be larger than --warmup-steps")

    data_overrides, data_desc = data_choice(args.data, args.vocab_size)
    overrides = base_overrides(args, data_overrides) + list(args.override)
    print(f"data: {data_desc}")
    print(f"settings: model.size={args.size} seq_len={args.seq_len} batch_size={args.batch_size} "
          f"steps={args.steps} (timed: the last {args.steps - args.warmup_steps}) "
          f"pairs={args.repeats} torch threads={args.threads} precisions={' '.join(args.precision)} "
          f"compile={args.compile} accelerator={args.accelerator}"
          + (f" overrides: {' '.join(args.override)}" if args.override else ""))
    t0 = time.perf_counter()
    data_info = prepare_data(overrides)
    print(f"corpus: {data_info['train_tokens']:,} train tokens, vocabulary {data_info['vocab_size']:,} "
          f"(prepared in {time.perf_counter() - t0:.1f}s)\n", flush=True)

    use_psi = args.max_stall >= 0 and cpu_stall_us() is not None
    rows = {}
    for precision in args.precision:
        print(f"-- precision {precision}" + (" (torch.compile)" if args.compile else ""), flush=True)
        rows[precision] = run_pairs(args, [*overrides, f"trainer.precision={precision}"], precision, use_psi)
    if not use_psi:
        print("note: no /proc/pressure/cpu here: contended runs cannot be detected")
    result = {
        "settings": {"model_size": args.size, "seq_len": args.seq_len, "batch_size": args.batch_size,
                     "steps": args.steps, "warmup_steps": args.warmup_steps, "pairs_wanted": args.repeats,
                     "threads": args.threads, "precisions": args.precision, "compile": args.compile,
                     "accelerator": args.accelerator, "data": data_desc, "data_info": data_info,
                     "extra_overrides": list(args.override), "max_stall_pct": args.max_stall if use_psi else None,
                     "nlpx_overrides": overrides + ["trainer.precision=<row>", "runs_dir=<tmp>"]},
        "rows": rows,
    }
    path = write_result("mlm_throughput", result, args.out)
    print(f"\nwrote {path}")


def run_pairs(args, overrides: list[str], precision: str, use_psi: bool) -> dict:
    """Alternating nlpx / HF pairs at one precision until args.repeats clean ones; their summary."""
    pairs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mlm-bench-") as tmp:
        while (sum(p["clean"] for p in pairs) < args.repeats
               and len(pairs) < args.repeats + (args.max_extra_pairs if use_psi else 0)):
            i = len(pairs)
            order = ("nlpx", "hf") if i % 2 == 0 else ("hf", "nlpx")  # A B, B A, ...: cancels drift
            pair = {}
            for side in order:
                pair[side] = spawn(side, args, overrides, tmp, f"{precision}-{i}", precision)
                print(f"pair {i + 1} {side:>4}: {describe(pair[side])}", flush=True)
            stalls = [pair[s]["cpu_stall_pct"] for s in order]
            pair["clean"] = not use_psi or all(x is not None and x <= args.max_stall for x in stalls)
            pair["ratio"] = pair["nlpx"]["tokens_per_s"] / pair["hf"]["tokens_per_s"]
            if not pair["clean"]:
                print(f"pair {i + 1}: contended (CPU stall above {args.max_stall:g}%): left out of the medians",
                      flush=True)
            pairs.append(pair)

    used = [p for p in pairs if p["clean"]]
    all_contended = not used
    if all_contended:
        used = pairs
    med = {side: median([p[side]["tokens_per_s"] for p in used]) for side in ("nlpx", "hf")}
    med_step = {side: median([p[side]["median_step_s"] for p in used]) for side in ("nlpx", "hf")}
    ratio = med["nlpx"] / med["hf"]
    step_ratio = med_step["hf"] / med_step["nlpx"]
    flops = {"nlpx": pairs[0]["nlpx"]["flops_per_token"], "hf": pairs[0]["hf"]["flops_per_token"]}
    bound = flops["hf"] / flops["nlpx"]
    peak = pairs[0]["nlpx"].get("peak_flops")
    mfu = {side: med[side] * flops[side] / peak if peak else None for side in ("nlpx", "hf")}
    # same work on both sides: same threads, dtype, parameters and tokens per batch in every run
    mismatch = [k for k in ("threads", "param_dtype", "parameters", "tokens_per_batch")
                if {p["nlpx"][k] for p in pairs} != {p["hf"][k] for p in pairs}]

    def per_run(side):
        return "  ".join(f"{p[side]['tokens_per_s']:,.0f}" + ("" if p["clean"] else "*") for p in pairs)

    print()
    print_table(["", "nlpx", "HF Trainer"], [
        ["tokens/s per run (* contended)", per_run("nlpx"), per_run("hf")],
        [f"median tokens/s ({len(used)} pairs)", f"{med['nlpx']:,.0f}", f"{med['hf']:,.0f}"],
        ["median step (s)", f"{med_step['nlpx']:.3f}", f"{med_step['hf']:.3f}"],
        ["model FLOPs per token (counted)", f"{flops['nlpx'] / 1e6:,.1f} M", f"{flops['hf'] / 1e6:,.1f} M"],
        ["MFU", "n/a" if mfu["nlpx"] is None else f"{mfu['nlpx']:.1%}", "n/a" if mfu["hf"] is None else f"{mfu['hf']:.1%}"],
        ["tokens / selected per batch", f"{pairs[0]['nlpx']['tokens_per_batch']:.0f} / "
         f"{median([p['nlpx']['selected_per_batch'] for p in pairs]):.0f}",
         f"{pairs[0]['hf']['tokens_per_batch']:.0f} / {median([p['hf']['selected_per_batch'] for p in pairs]):.0f}"],
        ["parameters", f"{pairs[0]['nlpx']['parameters']:,}", f"{pairs[0]['hf']['parameters']:,}"],
        ["peak RSS (MB, median)", f"{median([p['nlpx']['peak_rss_mb'] for p in pairs]):.0f}",
         f"{median([p['hf']['peak_rss_mb'] for p in pairs]):.0f}"],
    ])
    pair_text = ", ".join(f"{p['ratio']:.2f}" + ("" if p["clean"] else "*") for p in pairs)
    print(f"\n{precision}: nlpx / HF Trainer {ratio:.2f}x (per pair: {pair_text}; from median step times: "
          f"{step_ratio:.2f}x); FLOP-ratio bound {bound:.2f}x; reached {ratio / bound:.0%} of it "
          f"(target >= 90%: {'met' if ratio >= 0.9 * bound else 'NOT met'})\n")
    if mismatch:
        print(f"WARNING: the two sides differ in {', '.join(mismatch)}: the comparison is not like for like")
    if all_contended:
        print("WARNING: every pair ran while other work competed for the CPU (see CPU stall): the "
              "numbers are unreliable; run again on a quiet machine")
    return {
        "pairs": [{"clean": p["clean"], "ratio": round(p["ratio"], 3), "nlpx": p["nlpx"], "hf_trainer": p["hf"]}
                  for p in pairs],
        "pairs_used": len(used), "all_contended": all_contended,
        "median_tokens_per_s": {"nlpx": round(med["nlpx"], 1), "hf_trainer": round(med["hf"], 1)},
        "median_step_s": {"nlpx": round(med_step["nlpx"], 4), "hf_trainer": round(med_step["hf"], 4)},
        "ratio_of_medians": round(ratio, 3), "ratio_of_median_step_times": round(step_ratio, 3),
        "flops_per_token": {"nlpx": flops["nlpx"], "hf_trainer": flops["hf"]},
        "flop_ratio_bound": round(bound, 3), "share_of_bound": round(ratio / bound, 3),
        "target_share_of_bound": 0.9, "target_met": ratio >= 0.9 * bound,
        "peak_flops": peak, "mfu": {"nlpx": mfu["nlpx"], "hf_trainer": mfu["hf"]}, "mismatched": mismatch,
    }


if __name__ == "__main__":
    main()
