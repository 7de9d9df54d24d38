"""What the contrastive objectives train on, read and checked before a run directory exists.

  sentences  (simcse, esimcse unsupervised) the sentences of a corpus of the data group:
             data=text (data.paths=[...]: .txt, .jsonl with data.text_field; data.sentences=lines
             for one sentence per line, punct to split running text) or data=synthetic. Sentences
             shorter than objective.min_words words are dropped, and exact repeats (a repeated
             sentence in a batch is a false negative).
  triples    (simcse supervised) data=triples: .jsonl lines {anchor, positive[, negative]}
             (data.columns names the keys; the negative is used when every line has one).
  pairs      (angle) data=pairs: STS-B's train split from data.glue_dir (data.split) and .tsv /
             .jsonl files of scored pairs (data.files, data.columns), as `nlpx eval sts` reads.

Batches are tokenized in the collate function (padding to the batch's longest), as `views`: one
encoded batch per sentence role, plus `scores` for pairs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nlpx.errors import UserError

KINDS = ("sentences", "triples", "pairs")
TRIPLE_ROLES = ("anchor", "positive", "negative")


@dataclass
class EmbeddingData:
    kind: str
    rows: list  # sentences: str; triples: tuple[str, ...]; pairs: Pair
    source: str
    meta: dict = field(default_factory=dict)


def data_kind(data_cfg) -> str | None:
    """The `kind` of the class the data option names in `_target_` (sentences, triples, pairs, glue)."""
    from hydra.utils import get_class

    target = data_cfg.get("_target_")
    return getattr(get_class(str(target)), "kind", None) if target else None


def options_holding(kind: str) -> list[str]:
    """The data= options whose `_target_` holds `kind`."""
    from nlpx.config import group_options, option_target

    out = []
    for option in group_options()["data"]:
        if data_kind({"_target_": option_target("data", option)}) == kind:
            out.append(option)
    return out


def check_data_choice(kind: str, data_cfg, objective: str) -> None:
    if data_kind(data_cfg) != kind:
        valid = " or ".join(f"data={d}" for d in options_holding(kind))
        raise UserError(f"objective={objective} trains on {kind}: give {valid} (data={data_cfg.get('name')} "
                        "is not that)")


def load_sentences(data_cfg, min_words: int) -> EmbeddingData:
    from hydra.utils import get_class

    corpus = get_class(data_cfg._target_)(data_cfg)
    seen: dict[str, None] = {}
    docs = short = 0
    for doc in corpus.documents():
        docs += 1
        for sentence in doc:
            sentence = " ".join(sentence.split())
            if len(sentence.split()) < min_words:
                short += 1
                continue
            seen.setdefault(sentence, None)
    corpus.check_empty(docs)
    sentences = list(seen)
    if len(sentences) < 2:
        raise UserError(f"data={data_cfg.name}: {len(sentences)} sentence(s) of at least {min_words} words "
                        "(objective.min_words); contrastive training needs a batch of them")
    return EmbeddingData("sentences", sentences, str(data_cfg.name),
                         {"documents": docs, "sentences": len(sentences), "dropped_short": short})


def _as_files(value, key: str) -> list[str]:
    from nlpx.embeddings.pairs import as_list

    files = as_list(value)
    if not files:
        raise UserError(f"{key}: give the training files, e.g. {key}=[train.jsonl]")
    return files


def read_triples(path: str | Path, columns: dict[str, str]) -> list[tuple[str, ...]]:
    """(anchor, positive[, negative]) per line of a .jsonl file; errors name file:line:key."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data.files: {path}: no such file")
    if path.suffix.lower() != ".jsonl":
        raise UserError(f"data.files: {path}: triples are read from .jsonl files (one JSON object a line with "
                        f"keys '{columns['anchor']}', '{columns['positive']}' and optionally '{columns['negative']}')")
    from nlpx.data.jsonl import json_objects

    needs = f"'{columns['anchor']}', '{columns['positive']}'[, '{columns['negative']}'] (data.columns names them)"
    rows = []
    for lineno, obj in json_objects(path, f"keys {needs}"):
        texts = []
        for role in TRIPLE_ROLES:
            key = columns[role]
            if key not in obj:
                if role == "negative":
                    continue
                raise UserError(f"{path}:{lineno}: no key '{key}' (each line needs '{columns['anchor']}' and "
                                f"'{columns['positive']}'; data.columns names them)")
            value = obj[key]
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"{path}:{lineno}: '{key}' is not a non-empty string: {value!r}")
            texts.append(value)
        rows.append(tuple(texts))
    return rows


def load_triples(data_cfg) -> EmbeddingData:
    columns = {r: str(data_cfg.columns[r]) for r in TRIPLE_ROLES}
    files = _as_files(data_cfg.files, "data.files")
    rows = [t for f in files for t in read_triples(f, columns)]
    if len(rows) < 2:
        raise UserError(f"data.files: {len(rows)} triple(s); contrastive training needs a batch of them")
    with_negative = sum(len(t) == 3 for t in rows)
    if with_negative not in (0, len(rows)):
        raise UserError(f"data.files: {with_negative} of {len(rows)} lines have a '{columns['negative']}'; give "
                        "it on every line (hard negatives) or on none")
    return EmbeddingData("triples", rows, ",".join(files),
                         {"triples": len(rows), "hard_negatives": with_negative > 0})


def load_pairs(data_cfg) -> EmbeddingData:
    from nlpx.embeddings.pairs import read_datasets

    sets = read_datasets(data_cfg, data_cfg.get("glue_dir"), group="data")
    rows = [p for s in sets for p in s.pairs]
    return EmbeddingData("pairs", rows, ",".join(s.source for s in sets),
                         {"pairs": len(rows), "sets": {s.name: len(s.pairs) for s in sets}})


class _RecordData:
    """A data= option of records for the embedding objectives: its `kind` and its reader."""

    kind = ""

    def __init__(self, cfg):
        self.cfg = cfg

    def read(self) -> EmbeddingData:
        return type(self).load(self.cfg)


class Triples(_RecordData):
    """data=triples: (anchor, positive[, negative]) lines of .jsonl files."""

    kind = "triples"
    load = staticmethod(load_triples)


class ScoredPairs(_RecordData):
    """data=pairs: STS-B's split of data.glue_dir and/or files of scored pairs."""

    kind = "pairs"
    load = staticmethod(load_pairs)


def load_data(kind: str, data_cfg, objective_cfg) -> EmbeddingData:
    from hydra.utils import get_class

    check_data_choice(kind, data_cfg, str(objective_cfg.name))
    if kind == "sentences":  # a corpus (data=synthetic, text): its documents' sentences
        return load_sentences(data_cfg, int(objective_cfg.min_words))
    return get_class(data_cfg._target_)(data_cfg).read()


class Collator:
    """Rows -> {"views": [{"input_ids", "attention_mask"}, ...], "scores"?}: one view per sentence
    role (one for sentences; anchor, positive[, negative] for triples; both sides for pairs).
    `repeat`: (dup_rate, sampling, seed) for ESimCSE, which adds a second view of each sentence
    with some of its (non-special) tokens written twice."""

    def __init__(self, tokenizer, kind: str, max_length: int, repeat: tuple[float, str, int] | None = None,
                 position_limit: int | None = None):
        self.tokenizer, self.kind, self.max_length = tokenizer, kind, max_length
        self.repeat = repeat
        self.rng = random.Random(repeat[2]) if repeat else None
        self.limit = position_limit
        self.duplicated = self.tokens = 0  # ESimCSE: the measured share of duplicated tokens

    def encode(self, texts: list[str]) -> dict:
        out = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="pt")
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}

    def __call__(self, rows: list) -> dict:
        if self.kind == "sentences":
            views = [self.encode(rows)]
            if self.repeat:
                views.append(self.repeated(rows))
            return {"views": views}
        if self.kind == "triples":
            return {"views": [self.encode([r[i] for r in rows]) for i in range(len(rows[0]))]}
        return {"views": [self.encode([p.sentence1 for p in rows]), self.encode([p.sentence2 for p in rows])],
                "scores": torch.tensor([p.score for p in rows], dtype=torch.float32)}

    def repeated(self, texts: list[str]) -> dict:
        from nlpx.embeddings.augment import repeat_words

        dup_rate, sampling, _ = self.repeat
        tok = self.tokenizer
        sequences = []
        for ids in tok(list(texts), truncation=True, max_length=self.max_length)["input_ids"]:
            special = tok.get_special_tokens_mask(ids, already_has_special_tokens=True)
            start = 0
            while start < len(ids) and special[start]:
                start += 1
            end = len(ids)
            while end > start and special[end - 1]:
                end -= 1
            body = repeat_words(ids[start:end], dup_rate, self.rng, sampling)
            self.duplicated += len(body) - (end - start)
            self.tokens += end - start
            if self.limit is not None:  # never past the model's position table
                body = body[:max(0, self.limit - start - (len(ids) - end))]
            sequences.append(ids[:start] + body + ids[end:])
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for i, s in enumerate(sequences):
            input_ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}
