"""Sampling the second sentence of `[CLS] A [SEP] B [SEP]` from a UniLM / SimBERT model (a bert,
roformer or electra masked-LM trained by objective=unilm | simbert), and SimBERT's ranking of the
samples by cosine to A with the same model's sentence vectors.

Decoding: the candidates of one input share A, so they need no padding and their positions are the
training positions. Each step samples the next token of every unfinished candidate from the
masked-LM head at the last position, through transformers' logits warpers (temperature, top-k,
top-p), with the run's seeded generator; a candidate ends at [SEP] or after max_new_tokens.

KV cache: under the seq2seq mask no token's keys and values depend on a later token (A sees only A;
B's t-th token sees A and B up to t), so they can be kept instead of recomputed. transformers keeps
a cache in these classes only when `config.is_decoder` is set; with it set, a 4-D mask is used as
given (the first pass: A bidirectional), and each later step's single query may see every cached
key. Where a class takes no cache (its forward has no `cache` / `past_key_values` argument) every
step re-encodes the whole sequence with the seq2seq mask. Both give the same tokens (tested).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import torch

from nlpx.objectives.seq2seq import additive_mask, seq2seq_allowed

log = logging.getLogger("nlpx")


@dataclass
class Sampling:
    candidates: int          # samples drawn per input
    max_new_tokens: int
    temperature: float
    top_p: float | None
    top_k: int | None


def _warpers(s: Sampling):
    from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    out = LogitsProcessorList()
    if s.temperature != 1.0:
        out.append(TemperatureLogitsWarper(s.temperature))
    if s.top_k:
        out.append(TopKLogitsWarper(s.top_k))
    if s.top_p is not None and s.top_p < 1.0:
        out.append(TopPLogitsWarper(s.top_p))
    return out


def cache_argument(lm) -> str | None:
    """The name under which the encoder's forward takes a KV cache, or None."""
    params = inspect.signature(lm.base_model.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


class _Decoder:
    """Next-token logits for a growing batch of sequences that share A."""

    def __init__(self, lm, source: torch.Tensor, use_cache: bool):
        self.lm, self.source = lm, source
        self.arg = cache_argument(lm) if use_cache else None
        self.cache = None
        self.dtype = lm.get_input_embeddings().weight.dtype

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        n, a = ids.shape[0], self.source.shape[-1]
        types = torch.cat([torch.zeros(n, a, dtype=torch.long), torch.ones(n, ids.shape[1] - a, dtype=torch.long)], 1)
        types = types.to(ids.device)
        if self.arg is None:  # re-encode everything under the seq2seq mask
            mask = additive_mask(seq2seq_allowed(types, torch.ones_like(ids)), self.dtype)
            return self.lm(input_ids=ids, token_type_ids=types, attention_mask=mask).logits[:, -1]
        if self.cache is None:
            from transformers import DynamicCache

            # the layers fill it in place (the masked-LM output classes do not return it)
            self.cache, seen = DynamicCache(), 0
        else:
            seen = self.cache.get_seq_length()
        allowed = seq2seq_allowed(types, torch.ones_like(ids))[:, seen:]  # the new queries' rows
        out = self.lm(input_ids=ids[:, seen:], token_type_ids=types[:, seen:],
                      attention_mask=additive_mask(allowed, self.dtype), use_cache=True, **{self.arg: self.cache})
        return out.logits[:, -1]


@torch.no_grad()
def sample(lm, tokenizer, text: str, s: Sampling, generator: torch.Generator, max_length: int,
           use_cache: bool = True) -> list[str]:
    """s.candidates continuations B of `text` (decoded, special tokens dropped), in sampling order."""
    device = next(lm.parameters()).device
    source = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")["input_ids"].to(device)
    room = max(0, max_length - source.shape[1])
    steps = min(s.max_new_tokens, room)
    if steps < s.max_new_tokens:
        log.warning("generate: %r takes %d of generate.max_length=%d tokens; candidates get at most %d new tokens",
                    text[:60], source.shape[1], max_length, steps)
    # the special tokens other than [SEP] (which ends a candidate) are never sampled
    banned = [i for i in tokenizer.all_special_ids if i != tokenizer.sep_token_id]
    ids = source.repeat(s.candidates, 1)
    sep = tokenizer.sep_token_id
    done = torch.zeros(s.candidates, dtype=torch.bool, device=device)
    warp = _warpers(s)
    was_decoder = lm.config.is_decoder
    decoder = _Decoder(lm, source, use_cache and cache_argument(lm) is not None)
    if decoder.arg:
        lm.config.is_decoder = True  # transformers keeps the cache only for decoders
    try:
        for _ in range(steps):
            logits = decoder(ids).float()
            logits[:, banned] = float("-inf")
            scores = warp(ids, logits)
            probs = torch.softmax(scores, dim=-1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(device)
            nxt = torch.where(done, torch.full_like(nxt, sep), nxt)  # finished rows only repeat [SEP]
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == sep
            if bool(done.all()):
                break
    finally:
        lm.config.is_decoder = was_decoder
    texts = []
    for row in ids[:, source.shape[1]:].tolist():
        if sep in row:
            row = row[:row.index(sep)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return texts


def distinct(tokenizer, text: str, candidates: list[str]) -> list[str]:
    """The non-empty candidates, each once, without the input: compared as token ids (a decoded
    candidate is spelled as the tokenizer writes it: lower case, spaces around punctuation)."""
    def ids(t: str) -> tuple[int, ...]:
        return tuple(tokenizer(t, add_special_tokens=False)["input_ids"])

    seen, out = {ids(text)}, []
    for c in candidates:
        key = ids(c)
        if c and key and key not in seen:
            seen.add(key)
            out.append(c)
    return out


def rank(encoder, text: str, candidates: list[str], *, pooling: str, max_length: int, keep: int) -> list[dict]:
    """SimBERT's use: the distinct candidates (see `distinct`) by cosine to the input (the model's
    own sentence vectors), the best `keep`."""
    from nlpx.embeddings.encoder import encode

    distinct_ones = distinct(encoder.tokenizer, text, candidates)
    if not distinct_ones:
        return []
    vectors = encode(encoder, [text, *distinct_ones], pooling=pooling, batch_size=64, max_length=max_length)
    z = torch.nn.functional.normalize(vectors, dim=-1)
    cos = (z[1:] @ z[0]).tolist()
    ranked = sorted(zip(distinct_ones, cos), key=lambda x: -x[1])[:keep]
    return [{"text": t, "cosine": c} for t, c in ranked]
