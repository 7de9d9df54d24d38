"""The pretraining LightningModule: model + objective, AdamW with BERT's settings, budget-aware schedule."""

from __future__ import annotations

import torch

from nlpx.run.module import OptimizerSettings, RunModule, mix_seed
from nlpx.run.schedule import Budget


VAL_SAMPLING = 0x5A11  # the seed stream of validation-time sampling
COMMON_BATCH = 32  # batches of the common evaluation set (its metrics are token-weighted sums)


class PretrainModule(RunModule):
    def __init__(self, cfg, model, objective, budget: Budget, common: dict | None = None):
        super().__init__(int(cfg.seed))
        self.cfg, self.model, self.objective, self.budget = cfg, model, objective, budget
        self.common = common  # the common evaluation set's arrays (nlpx.data.common_eval), or None
        # run state that Lightning does not keep (with batches_seen and train_seconds): saved in
        # checkpoints (on_save_checkpoint)
        self.tokens_seen = 0
        self.last_val_step: int | None = None
        self._window: list[tuple[int, float]] = []
        # model FLOPs per position, counted on the first training batch (nlpx/run/flops.py)
        self.flops_per_token: float | None = None
        self.peak_flops: float | None = None

    def on_train_start(self):
        from nlpx.run.flops import peak_flops

        self.peak_flops = peak_flops(self.cfg)

    # -- training ----------------------------------------------------------------------------
    def on_train_batch_start(self, batch, batch_idx):
        super().on_train_batch_start(batch, batch_idx)
        # Lightning logs the optimizer step k when k % log_every_n_steps == 0
        self.objective.log_due = (self.trainer.global_step + 1) % self.trainer.log_every_n_steps == 0

    def training_step(self, batch, batch_idx):
        if self.flops_per_token is None:
            from nlpx.run.flops import count_step_flops

            flops = count_step_flops(lambda: self.objective(self.model, batch)["loss"], self.parameters())
            self.flops_per_token = flops / batch["input_ids"].numel()
        out = self.objective(self.model, batch)
        n = batch["input_ids"].shape[0]
        # counted here, not in on_train_batch_end: callbacks (the checkpoint) run before that hook
        self.batches_seen += 1
        self.tokens_seen += int(batch["attention_mask"].sum()) * self.trainer.world_size
        for key, value in out.items():
            if not key.startswith("_"):
                self.log(f"train/{key}", value, batch_size=n, prog_bar=key == "loss")
        return out["loss"]

    def on_train_batch_end(self, outputs, batch, batch_idx):
        dt = self.clock()
        tokens = int(batch["attention_mask"].sum()) * self.trainer.world_size
        self._window = (self._window + [(tokens, dt)])[-20:]
        rate = sum(t for t, _ in self._window) / max(sum(d for _, d in self._window), 1e-9)
        self.log("train/tokens_per_s", rate, batch_size=1)
        if self.flops_per_token:
            self.log("train/flops_per_s", rate * self.flops_per_token, batch_size=1)
            if self.peak_flops:
                self.log("train/mfu", rate * self.flops_per_token / self.peak_flops, batch_size=1)
        self.log("train/tokens_seen", float(self.tokens_seen), batch_size=1)
        self.log_lr()
        if self.budget.max_tokens and self.tokens_seen >= self.budget.max_tokens:
            self.trainer.should_stop = True

    def on_before_optimizer_step(self, optimizer):
        step_metrics = getattr(self.objective, "optimizer_step_metrics", None)
        if step_metrics is not None:
            for key, value in step_metrics(self.trainer).items():
                self.log(f"train/{key}", value, batch_size=1)

    def on_validation_batch_start(self, batch, batch_idx, dataloader_idx=0):
        # what an objective samples in validation (RTD's replacements) is the same for every run
        # and every visit; training reseeds at its next batch
        torch.manual_seed(mix_seed(VAL_SAMPLING, batch_idx))

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        if self.common is not None:
            # the whole set on every rank, outside Lightning's loop: trainer.limit_val_batches and
            # the arm's batch size, which differ between arms, must not change what is measured
            from nlpx.data.common_eval import batches

            metrics = self.objective.common_metrics(self.model, batches(self.common, COMMON_BATCH, self.device))
            for key, value in metrics.items():
                self.log(f"val/{key}", value, batch_size=1)
        if self.trainer.state.fn == "fit":
            self.last_val_step = self.trainer.global_step

    # -- validation ---------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        out = self.objective(self.model, batch)
        for key, value in out.items():
            if key.startswith("_") or key == "loss":
                continue
            # token-weighted means over the whole validation set, not means of batch means: each
            # metric "<part>_x" is weighted by the objective's "_<part>_count" for the batch
            weight = out.get(f"_{key.split('_')[0]}_count", 1)
            if weight == 0:  # nothing measured in this batch (RTD precision with no positive guess)
                continue
            self.log(f"val/{key}", value, batch_size=weight, sync_dist=True,
                     prog_bar=key == self.objective.monitor)

    # -- optimisation -------------------------------------------------------------------------
    def optimizer_settings(self) -> OptimizerSettings:
        return OptimizerSettings.from_cfg(self.cfg.optim)

    def scheduler(self, optimizer):
        # warm-up and decay follow the budget's progress (steps, time or tokens), so a time or
        # token budget ends at learning rate 0
        def factor(step: int) -> float:
            return self.budget.lr_factor(self.budget.progress(step, self.train_seconds, self.tokens_seen))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    # -- state --------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint):
        checkpoint["nlpx"] = {"batches_seen": self.batches_seen, "tokens_seen": self.tokens_seen,
                              "train_seconds": self.train_seconds}

    def on_load_checkpoint(self, checkpoint):
        state = checkpoint.get("nlpx", {})
        self.batches_seen = int(state.get("batches_seen", 0))
        self.tokens_seen = int(state.get("tokens_seen", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
