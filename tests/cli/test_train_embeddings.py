"""`nlpx train objective=simcse|esimcse|angle` on the tiny pretrained run and the fixture STS-B:
summaries, STS validation before/after, the sentence-transformers export, and exit-2 errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.recipes.train import train
from tests.conftest import cli, embedding_overrides


def run(overrides):
    return train(compose(overrides), overrides)


SYNTHETIC = ["data=synthetic", "data.num_docs=60"]


def test_simcse_run_records_pooling_sts_before_and_after_and_exports_for_sentence_transformers(
        pretrained_run, glue_dir, tmp_path):
    s = run(embedding_overrides(pretrained_run, glue_dir, tmp_path, "objective=simcse", *SYNTHETIC,
                                "model.pooling=max", steps=3))
    run_dir = Path(s["run_dir"])
    assert s["steps"] == 3 and s["objective"] == "simcse" and s["pooling"] == "max" and s["pooling_used"] == "max"
    assert s["data"]["kind"] == "sentences" and s["data"]["sentences"] > 12
    sts = s["sts"]
    assert sts["data"] == "stsb-dev" and [e["step"] for e in sts["history"]] == [0, 3]
    assert sts["before"] == sts["history"][0] and sts["after"] == sts["history"][-1]
    assert s["final"]["val/stsb-dev_spearman"] == sts["after"]["spearman"]
    assert s["examples_seen"] == 3 * 4
    assert {"config.yaml", "overrides.yaml", "metrics.jsonl", "summary.json", "hf"} <= {p.name for p in run_dir.iterdir()}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"train/loss", "train/positive_cos", "train/examples_per_s", "val/stsb-dev_spearman"} <= set().union(*rows)
    # `nlpx eval sts` of hf/ gives the run's final number: the same encoder, pooling and length
    from nlpx.recipes.eval_sts import eval_sts

    report = eval_sts([f"model.pretrained={run_dir}", f"data.glue_dir={glue_dir}", f"runs_dir={tmp_path / 'sts'}",
                       "logger=none", "model.pooling=max"])
    assert report["datasets"][0]["spearman"] == pytest.approx(sts["after"]["spearman"], abs=1e-9)
    # sentence-transformers loads hf/ with the same pooling and gives the same vectors
    from sentence_transformers import SentenceTransformer

    from nlpx.embeddings.encoder import encode, load_encoder

    st = SentenceTransformer(str(run_dir / "hf"), device="cpu")
    assert st.get_max_seq_length() == s["eval_max_length"]
    texts = ["the light tree near the house", "a dark river", "stone"]
    ours = encode(load_encoder(run_dir / "hf"), texts, pooling="max", batch_size=2, max_length=s["eval_max_length"])
    assert torch.allclose(torch.as_tensor(st.encode(texts)), ours, atol=1e-5)


def test_esimcse_run_repeats_tokens_at_the_configured_rate(pretrained_run, glue_dir, tmp_path):
    s = run(embedding_overrides(pretrained_run, glue_dir, tmp_path, "objective=esimcse", *SYNTHETIC,
                                "objective.queue_size=6", "objective.dup_rate=0.25", "objective.dup_sampling=fixed",
                                steps=3))
    assert s["esimcse"] == {"momentum": 0.995, "queue_size": 6, "dup_rate": 0.25, "dup_sampling": "fixed"}
    assert s["word_repetition"]["share"] == pytest.approx(0.25, abs=0.03)
    rows = [json.loads(line) for line in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    queued = [r["train/queue_negatives"] for r in rows if "train/queue_negatives" in r]
    assert queued == [0.0, 4.0, 6.0]  # the queue fills with each batch of 4 up to its size


def test_angle_run_on_stsb_train_and_a_scored_pairs_file(pretrained_run, glue_dir, tmp_path):
    extra = tmp_path / "more.jsonl"
    extra.write_text("".join(json.dumps({"a": f"x {i}", "b": f"y {i}", "s": i % 5}) + "\n" for i in range(10)))
    s = run(embedding_overrides(pretrained_run, glue_dir, tmp_path, "objective=angle", f"data.glue_dir={glue_dir}",
                                f"data.files=[{extra}]", "data.columns.sentence1=a", "data.columns.sentence2=b",
                                "data.columns.score=s"))
    assert s["data"]["kind"] == "pairs" and s["data"]["sets"] == {"stsb-train": 48, "more": 10}
    assert s["angle"]["weights"] == {"cosine": 1.0, "ibn": 1.0, "angle": 1.0, "contrastive": 0.0}
    rows = [json.loads(line) for line in (Path(s["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert {"train/cosine", "train/ibn", "train/angle"} <= set().union(*rows)
    latest = run(embedding_overrides(pretrained_run, glue_dir, tmp_path, "objective=angle_latest",
                                     f"data.glue_dir={glue_dir}"))
    assert latest["angle"]["weights"] == {"cosine": 0.0, "ibn": 1.0, "angle": 0.02, "contrastive": 0.0}


def test_supervised_simcse_on_triples(pretrained_run, glue_dir, tmp_path):
    triples = tmp_path / "nli.jsonl"
    triples.write_text("".join(json.dumps({"anchor": f"a {i}", "positive": f"b {i}", "negative": f"c {i}"}) + "\n"
                               for i in range(12)))
    s = run(embedding_overrides(pretrained_run, glue_dir, tmp_path, "objective=simcse", "data=triples",
                                f"data.files=[{triples}]", "objective.validation.split=none"))
    assert s["data"] == {"kind": "triples", "source": str(triples), "triples": 12, "hard_negatives": True}
    assert s["sts"]["before"] is None and "val/stsb-dev_spearman" not in s["final"]


@pytest.mark.parametrize("extra,message", [
    (["objective=angle", "data=text", "data.paths=[x]"], "objective=angle trains on pairs: give data=pairs"),
    (["objective=simcse", "data=triples", "data.files=[{tmp}/bad.jsonl]"], "bad.jsonl:2: no key 'positive'"),
    (["objective=simcse", *SYNTHETIC, "trick=[awp]"], "fine-tuning tricks apply to objective=classify"),
    (["objective=esimcse", *SYNTHETIC, "objective.batch_size=1"], "in-batch negatives need at least 2"),
    (["objective=simcse", *SYNTHETIC, "model.pooling=avg"], "model.pooling=avg: unknown pooling"),
    (["objective=angle", "objective.validation.split=train"], "objective.validation.split=train: unknown"),
    (["objective=simcse", *SYNTHETIC, "trainer.val_check_interval=0"], "trainer.val_check_interval=0: must be an integer >= 1"),
    (["objective=esimcse", *SYNTHETIC, "objective.queue_size=2.5"], r"objective.queue_size=2.5: must be an integer >= 0 \(a number of embeddings"),
    (["objective=simcse", *SYNTHETIC, "optim.warmup=-1"], r"optim.warmup=-1.0: must be a number >= 0"),  # typed: a float
    (["objective=simcse", *SYNTHETIC, "budget.max_steps=0"], "budget.max_steps=0: must be an integer >= 1"),
])
def test_bad_embedding_runs_exit_2_before_any_output(pretrained_run, glue_dir, tmp_path, cache_dir, extra, message):
    (tmp_path / "bad.jsonl").write_text('{"anchor": "a", "positive": "b"}\n{"anchor": "a"}\n')
    runs = tmp_path / "runs"
    args = [a.replace("{tmp}", str(tmp_path)) for a in embedding_overrides(pretrained_run, glue_dir, runs, *extra)]
    if "objective=angle" in extra and not any(a.startswith("data=") for a in extra):
        args.append(f"data.glue_dir={glue_dir}")
    with pytest.raises(UserError, match=message):
        run(args)
    assert not runs.exists()


def test_missing_model_is_exit_2_from_the_command_line(glue_dir, tmp_path, cache_dir):
    out = cli("train", "objective=simcse", *SYNTHETIC, f"runs_dir={tmp_path / 'runs'}", "logger=none",
              cache_dir=cache_dir)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == ("nlpx: error: objective=simcse trains a pretrained encoder: give "
                                                   "model.pretrained=PATH (an nlpx run directory, a local HF checkpoint "
                                                   "folder, or package:NAME)")
    assert not (tmp_path / "runs").exists()
