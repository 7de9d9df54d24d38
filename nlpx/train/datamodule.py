"""The LightningDataModule for pretraining: corpus -> instances -> masked examples -> batches."""

from __future__ import annotations

import logging

import lightning as L
from torch.utils.data import DataLoader, Sampler

from nlpx.data.dataset import TRAIN_STREAM, VAL_STREAM, Collator, MaskedExamples, StreamSampler
from nlpx.data.instances import (DocSentencesInstances, PackedInstances, SegmentPairInstances,
                                 SentenceOrderInstances, SentencePairInstances)
from nlpx.data.masking import MaskingConfig
from nlpx.errors import UserError

log = logging.getLogger("nlpx.data")
VAL_SEED = 0  # validation masks are the same for every run seed, so seeds compare on one val set
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


class PretrainDataModule(L.LightningDataModule):
    def __init__(self, cfg, prepared, *, total_batches: int, start_batch: int = 0):
        super().__init__()
        self.cfg, self.prepared = cfg, prepared
        self.total_batches, self.start_batch = total_batches, start_batch
        obj, seq_len = cfg.objective, int(cfg.data.seq_len)
        tok = prepared.tokenizer
        masking = masking_config(obj)
        static = obj.masking.mode == "static"
        train = build_instances(obj.format, prepared.train, tok, obj, seq_len)
        self.train_set = MaskedExamples(train, tok, masking, seed=int(cfg.seed), stream=TRAIN_STREAM,
                                        static=static)
        self.val_set = MaskedExamples(build_instances(obj.format, prepared.val, tok, obj, seq_len),
                                      tok, masking, seed=VAL_SEED, stream=VAL_STREAM, static=True)
        self.collate = Collator(tok.pad_token_id)
        # one batch size for train and val, from the train split's mean example length
        self.batch_size = batch_size_for(train, int(cfg.data.batch_size), seq_len)
        if self.batch_size != int(cfg.data.batch_size):
            log.info("objective.format=%s: %.1f tokens per example on average; batch size %d -> %d "
                     "to keep about %d tokens per batch", obj.format, train.mean_length,
                     int(cfg.data.batch_size), self.batch_size, int(cfg.data.batch_size) * seq_len)

    def _loader(self, dataset, sampler):
        workers = int(self.cfg.data.num_workers)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler,
                          collate_fn=self.collate, num_workers=workers,
                          persistent_workers=workers > 0)

    def _rank_world(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)

    def train_dataloader(self):
        rank, world = self._rank_world()
        sampler = StreamSampler(len(self.train_set), batch_size=self.batch_size,
                                total_batches=self.total_batches, seed=int(self.cfg.seed),
                                start_batch=self.start_batch, rank=rank, world_size=world)
        return self._loader(self.train_set, sampler)

    def val_dataloader(self):
        rank, world = self._rank_world()
        return self._loader(self.val_set, _ValKeys(len(self.val_set), rank, world))


class _ValKeys(Sampler):
    """Every validation example once, in order (epoch 0), split across ranks."""

    def __init__(self, n: int, rank: int, world: int):
        self.keys = [(0, i) for i in range(rank, n, world)]

    def __len__(self):
        return len(self.keys)

    def __iter__(self):
        return iter(self.keys)
