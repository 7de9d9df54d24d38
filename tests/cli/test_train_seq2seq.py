"""`nlpx train objective=unilm|simbert` on tiny checkpoints (bert from the pretraining fixture,
roformer and electra written here) and the fixture STS-B: summaries, held-out perplexity, the export
with its masked-LM head, and exit-2 errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.recipes.train import train
from tests.conftest import cli, embedding_overrides


def run(overrides):
    return train(compose(overrides), overrides)


def pairs_overrides(pretrained, glue_dir, runs, *extra, steps=2):
    return embedding_overrides(pretrained, glue_dir, runs, f"data.glue_dir={glue_dir}", "objective.min_score=0",
                               "objective.heldout=0.25", *extra, steps=steps)


def test_simbert_trains_validates_and_exports_its_head(pretrained_run, glue_dir, tmp_path):
    s = run(pairs_overrides(pretrained_run, glue_dir, tmp_path, "objective=simbert", steps=3))
    run_dir = Path(s["run_dir"])
    assert s["objective"] == "simbert" and s["steps"] == 3
    assert s["data"]["similar_pairs"] == 48 and s["data"]["heldout_pairs"] == 12 and s["data"]["train_pairs"] == 36
    assert s["data"]["repeated_pairs_dropped"] == 0
    assert s["examples_seen"] == 3 * 4 * 2  # 4 pairs a batch, both directions
    assert s["seq2seq"]["both_directions"] and s["simbert"] == {"scale": 30.0, "contrastive_weight": 1.0}
    final = s["final"]
    assert final["val/seq2seq_ppl"] == pytest.approx(torch.tensor(final["val/seq2seq_loss"]).exp().item(), rel=1e-6)
    assert [e["step"] for e in s["sts"]["history"]] == [0, 3]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"train/lm_loss", "train/contrastive_loss", "train/positive_cos", "val/seq2seq_ppl",
            "val/stsb-dev_spearman"} <= set().union(*rows)
    # hf/ reloads with its masked-LM head, and `nlpx eval sts` of it gives the run's final Spearman
    from transformers import AutoModelForMaskedLM

    lm, info = AutoModelForMaskedLM.from_pretrained(str(run_dir / "hf"), output_loading_info=True)
    assert info["missing_keys"] == [] or set(info["missing_keys"]) <= {"cls.predictions.decoder.weight"}
    from nlpx.recipes.eval_sts import eval_sts

    report = eval_sts([f"model.pretrained={run_dir}", f"data.glue_dir={glue_dir}", f"runs_dir={tmp_path / 'sts'}",
                       "logger=none"])
    assert report["datasets"][0]["spearman"] == pytest.approx(final["val/stsb-dev_spearman"], abs=1e-9)

    # `nlpx generate similar` from the run: one text in process, a file through the command line
    from nlpx.recipes.generate_similar import generate_similar

    gen = generate_similar([f"model.pretrained={run_dir}", f"runs_dir={tmp_path / 'gen'}", "logger=none",
                            "text=a small dog runs", "num=3", "generate.candidates=6", "generate.max_new_tokens=5"])
    [record] = gen["records"]
    assert record["text"] == "a small dog runs" and record["samples"] == 6 and len(record["generations"]) <= 3
    cosines = [g["cosine"] for g in record["generations"]]
    assert cosines == sorted(cosines, reverse=True) and all(g["text"] != record["text"] for g in record["generations"])
    lines = [json.loads(x) for x in (Path(gen["run_dir"]) / "generations.jsonl").read_text().splitlines()]
    assert lines == gen["records"]
    again = generate_similar([f"model.pretrained={run_dir}", f"runs_dir={tmp_path / 'gen'}", "logger=none",
                              "text=a small dog runs", "num=3", "generate.candidates=6", "generate.max_new_tokens=5",
                              "generate.kv_cache=false"])
    assert again["records"] == gen["records"]  # seeded; the cache changes nothing
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a small dog runs\n\nthe rain stopped\n")
    out = cli("generate", "similar", f"model.pretrained={run_dir}", f"runs_dir={tmp_path / 'gen2'}", "logger=none",
              "--file", str(inputs), "generate.candidates=3", "generate.max_new_tokens=4", cache_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    [folder] = (tmp_path / "gen2" / "generate").iterdir()
    assert [json.loads(x)["text"] for x in (folder / "generations.jsonl").read_text().splitlines()] == [
        "a small dog runs", "the rain stopped"]


def test_unilm_masked_on_triples(pretrained_run, glue_dir, tmp_path):
    triples = tmp_path / "pairs.jsonl"
    triples.write_text("".join(json.dumps({"anchor": f"a {i} b", "positive": f"c {i} d e"}) + "\n" for i in range(16)))
    s = run(embedding_overrides(pretrained_run, glue_dir, tmp_path, "objective=unilm", "data=triples",
                                f"data.files=[{triples}]", "objective.lm=masked", "objective.mask_ratio=0.5",
                                "objective.validation.split=none", "objective.heldout=0.25"))
    assert s["seq2seq"] == {"lm": "masked", "mask_ratio": 0.5, "both_directions": False, "min_score": 4.0,
                            "heldout": 0.25}
    assert s["data"]["heldout_pairs"] == 4 and s["examples_seen"] == 2 * 4
    assert "val/stsb-dev_spearman" not in s["final"] and s["final"]["val/seq2seq_ppl"] > 1
    # a masked model predicts in place: generation (next token) refuses it
    from nlpx.recipes.generate_similar import generate_similar

    with pytest.raises(UserError, match="trained with objective.lm=masked"):
        generate_similar([f"model.pretrained={s['run_dir']}", f"runs_dir={tmp_path / 'gen'}", "text=a b"])
    assert not (tmp_path / "gen").exists()


def tiny_checkpoint(family: str, tokenizer_from: Path, target: Path) -> Path:
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(str(tokenizer_from))
    common = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                  max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = (tf.RoFormerForMaskedLM(tf.RoFormerConfig(**common, embedding_size=32)) if family == "roformer"
             else tf.ElectraForMaskedLM(tf.ElectraConfig(**common, embedding_size=32)))
    model.save_pretrained(str(target))
    tok.save_pretrained(str(target))
    return target


@pytest.mark.parametrize("family", ["roformer", "electra"])
def test_simbert_on_roformer_and_electra(family, pretrained_run, glue_dir, tmp_path):
    ckpt = tiny_checkpoint(family, pretrained_run / "hf", tmp_path / family)
    s = run(pairs_overrides(ckpt, glue_dir, tmp_path / "runs", "objective=simbert"))
    assert s["steps"] == 2 and s["final"]["val/seq2seq_loss"] > 0
    from transformers import AutoModelForMaskedLM

    assert AutoModelForMaskedLM.from_pretrained(s["hf"]).config.model_type == family


@pytest.mark.parametrize("extra,message", [
    (["objective=unilm", "data=text", "data.paths=[x]"], "objective=unilm trains on pairs: give data=pairs"),
    (["objective=unilm", "objective.min_score=6"], "objective.min_score=6.0: none of the 48 pairs"),
    (["objective=simbert", "objective.lm=masked"], "SimBERT generates with the causal seq2seq loss"),
    (["objective=unilm", "objective.heldout=0.9"], r"objective.heldout=0.9: give a fraction of the pairs in \[0, 0.5\)"),
    (["objective=simbert", "model.pooling=cls"], "masked-LM head, whose class has no pooler"),
])
def test_bad_seq2seq_runs_exit_2_before_any_output(pretrained_run, glue_dir, tmp_path, extra, message):
    runs = tmp_path / "runs"
    with pytest.raises(UserError, match=message):
        pairs = [] if any(a.startswith("data=") for a in extra) else [f"data.glue_dir={glue_dir}"]
        run([*embedding_overrides(pretrained_run, glue_dir, runs, *extra), *pairs])
    assert not runs.exists()


@pytest.mark.parametrize("args,message", [
    ([], "give one input with text="),
    (["text=a", "--file", "{tmp}/in.txt"], "give one input with text="),
    (["--file", "{tmp}/missing.txt"], "missing.txt: no such file"),
    (["--file", "{tmp}/empty.txt"], "empty.txt: no input sentences"),
    (["--file", "{tmp}/bad.jsonl"], "bad.jsonl:2: 'text' is not a non-empty string"),
    (["text=a", "generate.top_p=1.5"], r"generate.top_p=1.5: give a probability in \(0, 1\]"),
    (["text=a", "generate.temperature=0"], "generate.temperature=0: give a number > 0"),
    (["text=a", "num=0"], "generate.num=0: give an integer >= 1"),
    (["text=a", "optim.lr=1e-3"], "trains nothing and reads no data"),
])
def test_bad_generate_commands_exit_2_before_any_output(pretrained_run, tmp_path, args, message):
    (tmp_path / "in.txt").write_text("x\n")
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"text": ""}\n')
    runs = tmp_path / "runs"
    out = cli("generate", "similar", f"model.pretrained={pretrained_run}", f"runs_dir={runs}", "logger=none",
              *[a.replace("{tmp}", str(tmp_path)) for a in args], cache_dir=tmp_path)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("nlpx: error:") and re.search(message, last), last
    assert not runs.exists()
