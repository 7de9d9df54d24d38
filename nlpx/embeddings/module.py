"""The LightningModule of the sentence-embedding objectives: encoder + objective, AdamW with a
linear schedule (transformers' get_linear_schedule_with_warmup, as SimCSE's and AnglE's trainers),
and STS validation every trainer.val_check_interval steps.

Validation is not a Lightning loop: it encodes the distinct sentences of the validation pairs with
nlpx.embeddings.encoder (length-bucketed, no gradient, the exported pooling, no training MLP) and
correlates their cosines with the gold scores, exactly what `nlpx eval sts` reports for the
exported model.
"""

from __future__ import annotations

from nlpx.run.module import OptimizerSettings, RunModule, warmup_steps


class EmbeddingModule(RunModule):
    def __init__(self, cfg, encoder, objective, tokenizer, *, total_steps: int, validation=None,
                 max_length: int = 128, loggers=()):
        super().__init__(int(cfg.seed))
        self.cfg, self.encoder, self.objective, self.tokenizer = cfg, encoder, objective, tokenizer
        self.total_steps = total_steps
        self.validation = validation  # PairSet or None
        self.max_length = max_length
        self.sts_loggers = list(loggers)  # validation also runs before and after fit, outside the trainer
        self.examples_seen = 0
        self.evaluations: list[dict] = []
        self._stepped = 0  # the optimizer steps the objective has been told about

    @property
    def validating(self) -> bool:
        return self.validation is not None or self.objective.validates

    def on_train_start(self):
        # the starting point, on the training device (before fit the module is still on the CPU)
        if self.validating:
            self.validate_now(self.trainer.global_step)

    def on_train_end(self):
        step = self.trainer.global_step
        if self.validating and (not self.evaluations or self.evaluations[-1]["step"] != step):
            self.validate_now(step)

    def training_step(self, batch, batch_idx):
        out = self.objective(self.encoder, batch)
        n = len(batch["views"][0]["input_ids"])
        self.batches_seen += 1
        self.examples_seen += n
        for key, value in out.items():
            self.log(f"train/{key}", value, batch_size=n, prog_bar=key == "loss")
        return out["loss"]

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.clock()
        self.log("train/examples_per_s", self.examples_seen / max(self.train_seconds, 1e-9), batch_size=1)
        self.log_lr()
        step = self.trainer.global_step
        if step == self._stepped:  # a batch that only accumulated gradients
            return
        self._stepped = step
        # ESimCSE's momentum copy follows the encoder right after each optimizer step
        self.objective.after_optimizer_step(self.encoder)
        every = int(self.cfg.trainer.val_check_interval)
        if self.validating and step % every == 0 and step < self.total_steps:
            self.validate_now(step)
            self.pause_clock()

    def validate_now(self, step: int) -> dict:
        """STS Spearman/Pearson of the validation pairs (if any) and the objective's own held-out metrics."""
        from nlpx.embeddings.encoder import Encoder, evaluate_pairs

        entry, logged = {"step": step}, {}
        if self.validation is not None:
            was_training = self.encoder.training
            self.encoder.eval()
            encoder = Encoder(self.encoder.model, self.tokenizer, None, str(self.device), pooler_trained=True)
            result = evaluate_pairs(encoder, self.validation.pairs, pooling=self.encoder.pooling,
                                    batch_size=int(self.cfg.objective.eval_batch_size), max_length=self.max_length)
            self.encoder.train(was_training)
            entry.update(spearman=result["spearman"], pearson=result["pearson"])
            name = self.validation.name
            logged.update({f"val/{name}_spearman": entry["spearman"], f"val/{name}_pearson": entry["pearson"]})
        own = self.objective.validate(self.encoder)
        entry.update(own)
        logged.update({f"val/{k}": v for k, v in own.items()})
        self.evaluations.append(entry)
        for lg in self.sts_loggers:
            lg.log_metrics(logged, step=step)
        return entry

    def optimizer_settings(self) -> OptimizerSettings:
        # decay_groups leaves out what does not train (ESimCSE's momentum copy)
        return OptimizerSettings.from_cfg(self.cfg.optim)

    def scheduler(self, optimizer):
        from transformers import get_linear_schedule_with_warmup

        warmup = warmup_steps(float(self.cfg.optim.warmup), self.total_steps)
        return get_linear_schedule_with_warmup(optimizer, warmup, self.total_steps)
