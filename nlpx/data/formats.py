"""How pretraining examples are cut from a corpus (objective.format: RoBERTa's input-format ablation
+ ALBERT's SOP), the batch size that keeps tokens per batch, and the masking settings: the
objective settings the data pipeline reads, checked before a corpus is built."""

from __future__ import annotations

import logging

from nlpx.data.instances import (DocSentencesInstances, PackedInstances, SegmentPairInstances,
                                 SentenceOrderInstances, SentencePairInstances)
from nlpx.data.masking import MaskingConfig
from nlpx.errors import UserError

log = logging.getLogger("nlpx.data")
SOP_SWAP_PROB = 0.5  # ALBERT: in order or swapped, 50/50


def _nsp_negative_prob(obj) -> float:
    return float(obj.get("nsp_negative_prob", 0.5))


# objective.format -> how examples are cut from the corpus (RoBERTa's input-format ablation + SOP)
FORMATS = {
    "full_sentences": lambda corpus, tok, obj, n: PackedInstances(corpus, n, tok.cls_token_id,
                                                                  tok.sep_token_id),
    "doc_sentences": lambda corpus, tok, obj, n: DocSentencesInstances(corpus, n, tok.cls_token_id,
                                                                       tok.sep_token_id),
    "segment_pair_nsp": lambda corpus, tok, obj, n: SegmentPairInstances(
        corpus, n, tok.cls_token_id, tok.sep_token_id, negative_prob=_nsp_negative_prob(obj)),
    "sentence_pair_nsp": lambda corpus, tok, obj, n: SentencePairInstances(
        corpus, n, tok.cls_token_id, tok.sep_token_id, negative_prob=_nsp_negative_prob(obj)),
    "segment_pair_sop": lambda corpus, tok, obj, n: SentenceOrderInstances(
        corpus, n, tok.cls_token_id, tok.sep_token_id, swap_prob=SOP_SWAP_PROB),
}
# old name -> new name, still accepted so that the saved config of an earlier run resumes
RENAMED_FORMATS = {"segment_pair": "segment_pair_nsp"}


def build_instances(fmt: str, corpus, tokenizer, objective_cfg, seq_len: int):
    return FORMATS[_format_name(fmt)](corpus, tokenizer, objective_cfg, seq_len)


def _format_name(fmt: str) -> str:
    fmt = RENAMED_FORMATS.get(fmt, fmt)
    if fmt not in FORMATS:
        raise UserError(f"objective.format={fmt}: unknown input format (valid: {', '.join(FORMATS)})")
    return fmt


def batch_size_for(instances, batch_size: int, seq_len: int) -> int:
    """The batch size for ``instances``: ``batch_size`` for the formats whose examples fill
    ``seq_len`` by construction, and for the short formats (``short_examples``: sentence_pair_nsp,
    doc_sentences) ``round(batch_size x seq_len / mean_length)``, so that every format's batch
    holds on average the non-pad tokens of a full batch, ``batch_size x seq_len`` (RoBERTa grew
    the batch for these formats to keep the tokens per batch comparable). Fixed for the run: the
    stream sampler resumes and splits ranks by batch index."""
    if not getattr(instances, "short_examples", False):
        return batch_size
    return max(batch_size, round(batch_size * seq_len / max(instances.mean_length, 1.0)))


def masking_config(objective_cfg) -> MaskingConfig:
    m = objective_cfg.masking
    if m.mode not in ("dynamic", "static"):
        raise UserError(f"objective.masking.mode={m.mode}: unknown (valid: dynamic, static)")
    return MaskingConfig(ratio=float(m.ratio), mask=float(m.mask), random=float(m.random),
                         keep=float(m.keep), strategy=m.get("strategy", "token"),
                         span_p=m.get("span_p", 0.2), span_max=m.get("span_max", 10))


def check_objective_settings(objective_cfg) -> None:
    """The objective settings the data pipeline reads (format, masking), checked by
    nlpx.data.prepare.prepare_corpus before the corpus is built or a run directory written."""
    if "format" in objective_cfg:
        if objective_cfg.format in RENAMED_FORMATS:
            log.warning("objective.format=%s is now called %s", objective_cfg.format,
                        RENAMED_FORMATS[objective_cfg.format])
        _format_name(objective_cfg.format)
    if "masking" in objective_cfg:
        masking_config(objective_cfg)
