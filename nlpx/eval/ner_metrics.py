"""Entity-level precision, recall and F1 by the CoNLL rule: an entity counts as found only when its
type and both ends are exact. Written on span sets rather than tag sequences so that one function
scores every head: softmax and CRF tags become spans with seqeval's entity rule
(nlpx.eval.ner_reader.tags_to_spans), GlobalPointer predicts spans directly. On tags it equals
seqeval's default-mode report (tests/unit/test_ner.py checks it).
"""

from __future__ import annotations

from collections import Counter


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": n_gold}


def entity_scores(gold: list, predicted: list) -> dict:
    """gold, predicted: per sentence, an iterable of (type, first, last). Returns {"micro": {...},
    "per_type": {type: {...}}} with precision, recall, f1 and support (gold entities)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences, {len(predicted)} predicted")
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g, p in zip(gold, predicted):
        g, p = set(g), set(p)
        for kind, *_ in g:
            n_gold[kind] += 1
        for kind, *_ in p:
            n_pred[kind] += 1
        for kind, *_ in g & p:
            tp[kind] += 1
    kinds = sorted(set(n_gold) | set(n_pred))
    return {"micro": _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values())),
            "per_type": {k: _prf(tp[k], n_pred[k], n_gold[k]) for k in kinds}}
