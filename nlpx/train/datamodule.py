"""The LightningDataModule for pretraining: corpus -> instances -> the objective's examples -> batches."""

from __future__ import annotations

import logging

import lightning as L
from hydra.utils import get_class
from torch.utils.data import DataLoader, Sampler

from nlpx.data.dataset import TRAIN_STREAM, VAL_STREAM, StreamSampler
from nlpx.data.formats import batch_size_for, build_instances
from nlpx.data.loader_workers import worker_kwargs

log = logging.getLogger("nlpx.data")
VAL_SEED = 0  # validation masks are the same for every run seed, so seeds compare on one val set


class PretrainDataModule(L.LightningDataModule):
    def __init__(self, cfg, prepared, *, total_batches: int, start_batch: int = 0):
        super().__init__()
        self.cfg, self.prepared = cfg, prepared
        self.total_batches, self.start_batch = total_batches, start_batch
        obj, seq_len = cfg.objective, int(cfg.data.seq_len)
        tok = prepared.tokenizer
        objective = get_class(obj._target_)
        train = build_instances(obj.format, prepared.train, tok, obj, seq_len)
        self.train_set = objective.examples(train, tok, obj, seed=int(cfg.seed), stream=TRAIN_STREAM, train=True)
        self.val_set = objective.examples(build_instances(obj.format, prepared.val, tok, obj, seq_len), tok, obj,
                                          seed=VAL_SEED, stream=VAL_STREAM, train=False)
        self.collate = objective.collator(tok)
        # one batch size for train and val, from the train split's mean example length
        self.batch_size = batch_size_for(train, int(cfg.data.batch_size), seq_len)
        if self.batch_size != int(cfg.data.batch_size):
            log.info("objective.format=%s: %.1f tokens per example on average; batch size %d -> %d "
                     "to keep about %d tokens per batch", obj.format, train.mean_length,
                     int(cfg.data.batch_size), self.batch_size, int(cfg.data.batch_size) * seq_len)

    def _loader(self, dataset, sampler):
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, collate_fn=self.collate,
                          **worker_kwargs(int(self.cfg.data.num_workers)))

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
