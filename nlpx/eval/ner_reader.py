"""NER data in its two published layouts, read into one form: a sentence's tokens and its entity
spans (type, first token, last token; inclusive, as seqeval and CLUENER give them).

- CoNLL column files (CoNLL-2003): one token a line, columns separated by spaces, the NER tag in
  column `tag_column` (default the last), sentences separated by blank lines, `-DOCSTART-` lines
  between documents. CoNLL-2003's tags are IOB1 (B- only where an entity directly follows one of
  the same type); they are converted to IOB2 (B- on every entity's first token), the scheme
  seqeval's CoNLL rule and the tagging heads use.
- Span JSON lines (CLUENER2020): `{"text": ..., "label": {type: {mention: [[start, end], ...]}}}`
  with inclusive character offsets; Chinese is one token per character, so a character offset is
  a token index. A row without `label` (CLUENER's test) has no spans.

A malformed line is a UserError naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nlpx.data.files import text_lines
from nlpx.data.jsonl import json_objects
from nlpx.errors import UserError


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    spans: tuple[tuple[str, int, int], ...] | None  # (type, first, last) inclusive; None: unlabelled
    line: int  # where it starts in its file (1-based), for messages


def _in_order(spans) -> tuple:
    return tuple(sorted(spans, key=lambda s: (s[1], s[2], s[0])))


def bio_tags(types) -> tuple[str, ...]:
    """O, then B-/I- of each type: the tag ids of the softmax and CRF heads."""
    return ("O",) + tuple(f"{p}-{t}" for t in types for p in ("B", "I"))


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 -> IOB2: an I-X that starts an entity (after O, after another type, or first) becomes B-X."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            before = out[i - 1] if i else "O"
            if before == "O" or before[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def tags_to_spans(tags: list[str]) -> tuple[tuple[str, int, int], ...]:
    """The entities of a tag sequence by the CoNLL rule (seqeval's default mode: an I-X that does
    not continue an X entity starts one), as (type, first, last)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return tuple(get_entities(list(tags)))


def spans_to_tags(n: int, spans) -> list[str]:
    """IOB2 tags of n tokens with the given (type, first, last) spans (non-overlapping)."""
    tags = ["O"] * n
    for kind, first, last in spans:
        if any(t != "O" for t in tags[first:last + 1]):
            raise ValueError(f"overlapping spans at {first}-{last}")
        tags[first] = "B-" + kind
        for i in range(first + 1, last + 1):
            tags[i] = "I-" + kind
    return tags


def flat(spans) -> tuple[tuple, tuple]:
    """(kept, dropped): the spans a BIO tagging can hold, longest first where spans overlap
    (CLUENER nests some: a company inside a book title), and the ones it cannot. Scores are always
    against every gold span: a BIO head loses the dropped ones, GlobalPointer can find them."""
    kept, dropped, used = [], [], set()
    for span in sorted(spans, key=lambda s: (s[1] - s[2], s[1], s[0])):  # longest, then leftmost
        cover = set(range(span[1], span[2] + 1))
        if cover & used:
            dropped.append(span)
        else:
            kept.append(span)
            used |= cover
    return _in_order(kept), _in_order(dropped)


def read_conll(path: str | Path, *, tag_column: int = -1, scheme: str = "iob1") -> list[Sentence]:
    """The sentences of a CoNLL column file, their tags converted from `scheme` (iob1 | iob2)."""
    path = Path(path)
    if scheme not in ("iob1", "iob2"):
        raise UserError(f"{path}: tag scheme '{scheme}' (valid: iob1, iob2)")
    sentences, tokens, tags, start = [], [], [], 0

    def close() -> None:
        if tokens:
            fixed = iob1_to_iob2(tags) if scheme == "iob1" else tags
            sentences.append(Sentence(tuple(tokens), tags_to_spans(fixed), start))
        tokens.clear()
        tags.clear()

    for n, line in enumerate(text_lines(path), 1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            close()
            continue
        cols = line.split()
        try:
            tag = cols[tag_column]
        except IndexError:
            raise UserError(f"{path}:{n}: {len(cols)} columns, no tag column {tag_column}") from None
        if tag != "O" and (tag[:2] not in ("B-", "I-") or len(tag) < 3):
            raise UserError(f"{path}:{n}: tag '{tag}' (valid: O, B-TYPE, I-TYPE)")
        if not tokens:
            start = n
        tokens.append(cols[0])
        tags.append(tag)
    close()
    return sentences


def read_span_json(path: str | Path) -> list[Sentence]:
    """The rows of a CLUENER-style span JSON lines file, one token per character."""
    out = []
    for n, row in json_objects(Path(path), "a 'text' field (and 'label' where labelled)"):
        text = row.get("text")
        if not isinstance(text, str):
            raise UserError(f"{path}:{n}: no 'text' string")
        if "label" not in row:
            out.append(Sentence(tuple(text), None, n))
            continue
        spans = []
        for kind, mentions in (row["label"] or {}).items():
            for mention, places in mentions.items():
                for first, last in places:
                    if not (0 <= first <= last < len(text)) or text[first:last + 1] != mention:
                        raise UserError(f"{path}:{n}: {kind} '{mention}' at [{first}, {last}] is not that "
                                        f"text ('{text[first:last + 1]}')")
                    spans.append((kind, first, last))
        out.append(Sentence(tuple(text), _in_order(spans), n))
    return out
