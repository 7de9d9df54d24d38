"""Zero-shot prompts (eval.mode=zeroshot_nsp | zeroshot_mlm): what each candidate answer of an
example is scored on. The templates and label words are data, in each task's table
(conf/task/<benchmark>/_data/<task>.yaml, key `prompts`).

Candidates: one per label for a classification task (its label word); one per row for CLUEWSC
(the row's noun phrase, span1: the rows sharing a text and a pronoun are one multiple-choice
question, see `wsc_predictions`); one per candidate idiom for ChID.

- NSP (NSP-BERT): sentence A, sentence B; the score is the NSP head's probability that B follows
  A. Classification: A = the text (text_a), B = the template with {word} (pair tasks: and
  {text_b}). CLUEWSC: A = the text, B = the template with {span1} and {span2}. ChID: A = the
  text up to the blank followed by the candidate, B = the text after the blank.
- MLM (PET): one token sequence with one [MASK] per token of the candidate; the score is the
  mean log-probability of the candidate's tokens at their [MASK]s. Classification: the template
  with {text_a}, {text_b} and {mask}. CLUEWSC: the text with the pronoun replaced by the [MASK]s
  for span1. ChID: the text with the blank replaced by the [MASK]s for the candidate.

Truncation cuts the texts only, never a template's words or a [MASK]: templates' texts from their
end (the longer first), CLUEWSC's and ChID's left context from its start and right context from
its end, so the [MASK]s stay in the middle of what is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nlpx.errors import UserError

FIELDS = re.compile(r"\{(text_a|text_b|mask)\}")


@dataclass(frozen=True)
class Prompts:
    words: tuple[str, ...] | None  # the verbalizer: one word per label (None: multiple choice)
    nsp: str | None
    mlm: str | None
    source: str


def prompts_of(spec, where: str) -> Prompts:
    raw = getattr(spec, "prompts", None)
    if not raw:
        raise UserError(f"{where}: task {spec.name} has no zero-shot prompts (key `prompts` of its table, "
                        "conf/task/<benchmark>/_data)")
    words = raw.get("words")
    if words == "labels":  # CSLDCP: the label names are the words
        words = spec.labels
    kind = kind_of(spec)
    if kind in ("single", "pair"):
        if words is None or len(words) != len(spec.labels):
            raise ValueError(f"{spec.name}: prompts.words needs one word per label ({len(spec.labels)})")
        for key, need in (("nsp", ("{word}",) + (("{text_b}",) if kind == "pair" else ())),
                          ("mlm", ("{text_a}", "{mask}") + (("{text_b}",) if kind == "pair" else ()))):
            missing = [n for n in need if n not in raw[key]]
            if missing:
                raise ValueError(f"{spec.name}: prompts.{key} lacks {', '.join(missing)}")
    return Prompts(None if words is None else tuple(str(w) for w in words), raw.get("nsp"), raw.get("mlm"),
                   str(raw.get("source", "nlpx")))


def _has_pair(spec) -> bool:
    """A GLUE task reads a second text (MRPC)."""
    return any(s.text_b for s in getattr(spec, "splits", ()) if hasattr(s, "text_b"))


def kind_of(spec) -> str:
    return getattr(spec, "kind", "pair" if _has_pair(spec) else "single")


def candidates(spec, prompts: Prompts, example) -> list[str]:
    """The candidate answers of one example, in label / candidate order."""
    kind = kind_of(spec)
    if kind == "wsc":
        return [example.parts["span1"]]
    if kind == "choice":
        return list(example.parts["candidates"])
    return list(prompts.words)


# -- NSP --------------------------------------------------------------------------------------
def nsp_pairs(spec, prompts: Prompts, example) -> list[tuple[str, str]]:
    """(sentence A, sentence B) per candidate."""
    kind = kind_of(spec)
    if kind == "wsc":
        p = example.parts
        return [(p["text"], prompts.nsp.format(span1=p["span1"], span2=p["span2"]))]
    if kind == "choice":
        left, _, right = example.parts["text"].partition(example.parts["blank"])
        return [(left + c, right) for c in example.parts["candidates"]]
    return [(example.text_a, prompts.nsp.format(word=w, text_b=example.text_b or "")) for w in prompts.words]


# -- MLM --------------------------------------------------------------------------------------
@dataclass
class Masked:
    """One MLM input: token ids with [MASK]s at `masks`, and the candidates scored there (each a
    list of token ids as long as `masks`)."""

    ids: list[int]
    masks: list[int]
    targets: list[list[int]]
    candidates: list[int]  # the candidates' positions in the example's candidate list


def mlm_inputs(spec, prompts: Prompts, example, tokenizer, max_length: int) -> list[Masked]:
    """One input per distinct candidate length (candidates of one length share the [MASK]s, so one
    forward pass scores them all: the same numbers as one pass each)."""
    tokens = [_ids(tokenizer, c) for c in candidates(spec, prompts, example)]
    by_length: dict[int, list[int]] = {}
    for i, t in enumerate(tokens):
        if not t:
            raise UserError(f"{spec.name}: candidate {candidates(spec, prompts, example)[i]!r} has no tokens "
                            "in this vocabulary")
        by_length.setdefault(len(t), []).append(i)
    out = []
    for n, members in by_length.items():
        ids, masks = assemble(_segments(spec, prompts, example, tokenizer, n), tokenizer, max_length)
        out.append(Masked(ids, masks, [tokens[i] for i in members], members))
    return out


def _segments(spec, prompts, example, tokenizer, n: int) -> list[tuple]:
    """("lit", ids) | ("text", ids, keep) | ("mask", n): keep is "start" (cut from the end) or "end"."""
    kind = kind_of(spec)
    if kind in ("wsc", "choice"):
        p = example.parts
        if kind == "wsc":
            at = p["span2_index"]
            left, right = p["text"][:at], p["text"][at + len(p["span2"]):]
        else:
            left, _, right = p["text"].partition(p["blank"])
        return [("text", _ids(tokenizer, left), "end"), ("mask", n), ("text", _ids(tokenizer, right), "start")]
    segments, pos = [], 0
    values = {"text_a": example.text_a, "text_b": example.text_b or ""}
    for m in FIELDS.finditer(prompts.mlm):
        if m.start() > pos:
            segments.append(("lit", _ids(tokenizer, prompts.mlm[pos:m.start()])))
        field = m.group(1)
        segments.append(("mask", n) if field == "mask" else ("text", _ids(tokenizer, values[field]), "start"))
        pos = m.end()
    if pos < len(prompts.mlm):
        segments.append(("lit", _ids(tokenizer, prompts.mlm[pos:])))
    return segments


def assemble(segments: list[tuple], tokenizer, max_length: int) -> tuple[list[int], list[int]]:
    """[CLS] segments [SEP] within max_length tokens, the longest text cut first; (ids, [MASK] positions)."""
    fixed = 2 + sum(len(s[1]) if s[0] == "lit" else s[1] for s in segments if s[0] != "text")
    texts = [list(s[1]) for s in segments if s[0] == "text"]
    if fixed > max_length:
        raise UserError(f"eval.max_length={max_length}: the prompt alone takes {fixed} tokens")
    while fixed + sum(map(len, texts)) > max_length:
        longest = max(range(len(texts)), key=lambda i: len(texts[i]))
        keep = [s for s in segments if s[0] == "text"][longest][2]
        del texts[longest][0 if keep == "end" else -1]
    ids, masks, k = [tokenizer.cls_token_id], [], 0
    for s in segments:
        if s[0] == "lit":
            ids += s[1]
        elif s[0] == "text":
            ids += texts[k]
            k += 1
        else:
            masks += list(range(len(ids), len(ids) + s[1]))
            ids += [tokenizer.mask_token_id] * s[1]
    return ids + [tokenizer.sep_token_id], masks


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


# -- CLUEWSC as multiple choice ------------------------------------------------------------------
def wsc_predictions(examples, scores: list[float], labels: tuple[str, ...]) -> list[int]:
    """The rows sharing a text and a pronoun are one question whose options are their noun phrases:
    the best-scoring row is predicted "true", the others "false" (a row alone is "true": it is
    the only option offered). Class ids in `labels` order."""
    best: dict[tuple, int] = {}
    for i, e in enumerate(examples):
        key = (e.parts["text"], e.parts["span2_index"], e.parts["span2"])
        if key not in best or scores[i] > scores[best[key]]:
            best[key] = i
    winners = set(best.values())
    return [labels.index("true" if i in winners else "false") for i in range(len(examples))]
