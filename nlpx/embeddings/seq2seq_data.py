"""What objective=unilm | simbert train on: pairs of similar sentences, and their batches.

  data=pairs     scored pairs (STS-B's split, .tsv / .jsonl files) with a score of at least
                 objective.min_score are the similar pairs (SimBERT: STS-B >= 4.0)
  data=triples   each line's anchor and positive (a negative, if any, is not used)

objective.heldout of the pairs (seeded by the run's seed) are kept out of training to measure the
generation's perplexity.
"""

from __future__ import annotations

import random

import torch

from nlpx.embeddings.data import EmbeddingData
from nlpx.errors import UserError


def similar_pairs(data: EmbeddingData, min_score) -> list[tuple[str, str]]:
    """`min_score`: one threshold for every set of scored pairs, or {set name: threshold} naming each
    set (sets on different scales: STS-B's 0-5, MRPC's 0/1 labels)."""
    if data.kind == "triples":
        return [(t[0], t[1]) for t in data.rows]
    sets = dict(data.meta.get("sets") or {"pairs": len(data.rows)})  # rows come set after set, in this order
    if isinstance(min_score, (int, float)) and not isinstance(min_score, bool):
        thresholds = {name: float(min_score) for name in sets}
    else:
        thresholds = dict(min_score)
        if set(thresholds) != set(sets):
            raise UserError(f"objective.min_score: give a threshold for each set of pairs read ({', '.join(sets)}), "
                            f"or one number for all (got {', '.join(map(str, thresholds)) or 'none'})")
    pairs, start, empty = [], 0, []
    for name, count in sets.items():
        kept = [(p.sentence1, p.sentence2) for p in data.rows[start:start + count] if p.score >= float(thresholds[name])]
        if not kept:
            empty.append(name)
        pairs += kept
        start += count
    if not pairs:
        raise UserError(f"objective.min_score={_show(min_score)}: none of the {len(data.rows)} pairs of {data.source} "
                        "scores that high")
    if empty:  # a file read for nothing: most likely a set on another scale (MRPC's 0/1 labels)
        raise UserError(f"objective.min_score={_show(min_score)}: no pair of {', '.join(empty)} scores that high; give "
                        f"a threshold per set, e.g. objective.min_score={{{', '.join(f'{n}:{thresholds[n]:g}' for n in sets)}}}")
    return pairs


def distinct_pairs(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """(the pairs without repeats, how many were dropped): a pair is the same whatever its order,
    case or spacing (STS-B's MSRpar pairs also occur in MRPC); a repeat could land on both sides of
    the held-out split, or twice in a batch as a false negative."""
    seen, out = set(), []
    for a, b in pairs:
        key = tuple(sorted(" ".join(t.lower().split()) for t in (a, b)))
        if key not in seen:
            seen.add(key)
            out.append((a, b))
    return out, len(pairs) - len(out)


def _show(value) -> str:
    return str(float(value)) if isinstance(value, (int, float)) else str(dict(value))


def split_heldout(pairs: list, fraction: float, seed: int) -> tuple[list, list]:
    """(training pairs, held-out pairs): round(fraction x n) pairs drawn with the seed."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    k = round(fraction * len(pairs))
    held = sorted(order[:k])
    kept = sorted(order[k:])
    return [pairs[i] for i in kept], [pairs[i] for i in held]


def causal_targets(input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                   attention_mask: torch.Tensor) -> torch.Tensor:
    """labels[t] = input_ids[t+1] where t+1 is a (non-padding) token of segment 1, else -100."""
    labels = torch.full_like(input_ids, -100)
    target = token_type_ids[:, 1:].bool() & attention_mask[:, 1:].bool()
    labels[:, :-1] = torch.where(target, input_ids[:, 1:], labels[:, :-1])
    return labels


def masked_targets(input_ids, token_type_ids, attention_mask, mask_id: int, ratio: float,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input ids, labels): round(ratio x its length) of each row's segment-1 tokens, at least
    one, replaced by [MASK] and labelled with the original token."""
    target = token_type_ids.bool() & attention_mask.bool()
    noise = torch.rand(input_ids.shape, generator=generator).to(input_ids.device)
    noise = noise.masked_fill(~target, 2.0)  # never chosen
    counts = (target.sum(1).float() * ratio).round().clamp(min=1).long()
    order = noise.argsort(dim=1).argsort(dim=1)  # each position's rank among its row's draws
    chosen = (order < counts[:, None]) & target
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    return input_ids.masked_fill(chosen, mask_id), labels


class Seq2SeqCollator:
    """(A, B) pairs -> `[CLS] A [SEP] B [SEP]` sequences (both orders, A->B then B->A, when
    `both_directions`), with token types, padding mask, `labels` for the generation and `views`
    (one entry: the sequences) for the counters of the embedding module.
    `masked`: (ratio, seed) for UniLM's masked variant; else causal next-token labels on B."""

    repeat = None  # (no word-repetition view: the ESimCSE counters of the summary)

    def __init__(self, tokenizer, max_length: int, both_directions: bool, masked: tuple[float, int] | None = None):
        self.tokenizer, self.max_length, self.both_directions = tokenizer, max_length, both_directions
        self.masked = masked
        self.generator = torch.Generator().manual_seed(masked[1]) if masked else None

    def __call__(self, pairs: list[tuple[str, str]]) -> dict:
        if self.both_directions:
            pairs = [order for a, b in pairs for order in ((a, b), (b, a))]
        enc = self.tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation="longest_first",
                             max_length=self.max_length, padding=True, return_token_type_ids=True,
                             return_tensors="pt")
        ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
        if self.masked:
            ids, labels = masked_targets(ids, types, mask, self.tokenizer.mask_token_id, self.masked[0],
                                         self.generator)
        else:
            labels = causal_targets(ids, types, mask)
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels,
                "views": [{"input_ids": ids, "attention_mask": mask}]}
