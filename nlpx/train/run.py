"""`nlpx train`: compose -> data -> model + objective -> fit -> validate -> export -> summary."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from nlpx.errors import UserError
from nlpx.rundir import atomic_write_json, atomic_write_text, run_dir_for

log = logging.getLogger("nlpx")


def resume_config(cfg, overrides: list[str]):
    """The saved config of the run to resume, with key=value overrides (say, a longer budget)."""
    from omegaconf import OmegaConf

    run_dir = Path(str(cfg.resume))
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise UserError(f"resume={cfg.resume}: not an nlpx run directory (no config.yaml)")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise UserError(f"resume={cfg.resume}: no checkpoints/last.ckpt to resume from")
    changes = [o for o in overrides if not o.startswith("resume=")]
    if any("." not in o.split("=", 1)[0] and not o.startswith("+") for o in changes):
        raise UserError("resume: only key=value overrides (a.b=c) can change a resumed run, "
                        f"not group choices: {' '.join(changes)}")
    resumed = OmegaConf.merge(OmegaConf.load(saved), OmegaConf.from_dotlist(changes))
    resumed.resume, resumed.run_id = str(run_dir), run_dir.name
    resumed.runs_dir, resumed.experiment = str(run_dir.parent.parent), run_dir.parent.name
    return resumed, run_dir, ckpt


def write_run_config(run_dir: Path, cfg, overrides: list[str]) -> None:
    """config.yaml (the resolved config) and overrides.yaml (every command line that ran it)."""
    from omegaconf import OmegaConf

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    history = run_dir / "overrides.yaml"
    previous = OmegaConf.to_container(OmegaConf.load(history)) if history.exists() else []
    atomic_write_text(history, OmegaConf.to_yaml(previous + [list(overrides)]))


def train(cfg, overrides: list[str]) -> dict:
    objective_cls = _objective_class(cfg)
    if getattr(objective_cls, "kind", "pretrain") == "finetune":
        from nlpx.finetune.run import finetune_run

        return finetune_run(cfg, overrides)
    if getattr(objective_cls, "kind", "pretrain") == "embedding":
        from nlpx.embeddings.run import embedding_run

        return embedding_run(cfg, overrides)
    from nlpx.tricks.stack import check_not_pretraining

    check_not_pretraining(cfg)
    return pretrain(cfg, overrides)


def _objective_class(cfg):
    from hydra.utils import get_class

    return get_class(cfg.objective._target_)


def pretrain(cfg, overrides: list[str]) -> dict:
    import torch
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from nlpx.data.prepare import prepare_corpus
    from nlpx.models.pretrained import check_vocab
    from nlpx.train.datamodule import PretrainDataModule
    from nlpx.train.export import export_hf, summary_info
    from nlpx.train.loggers import build_loggers, close_loggers
    from nlpx.train.module import PretrainModule
    from nlpx.train.schedule import UNBOUNDED_BATCHES, Budget
    from nlpx.train.trainer import build_trainer

    quiet_libraries()
    started = time.time()
    ckpt, start_step = None, 0
    if cfg.resume:
        cfg, run_dir, ckpt = resume_config(cfg, overrides)
        start_step = int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
    else:
        run_dir = run_dir_for(cfg)
    budget = Budget.from_cfg(cfg.trainer)
    config_dict = OmegaConf.to_container(cfg, resolve=True)

    # everything a user can get wrong is checked before the run directory exists
    prepared = prepare_corpus(cfg)
    torch.manual_seed(int(cfg.seed))  # the random init is a function of the seed
    family = get_class(cfg.model._target_)(cfg.model)
    objective_cls = get_class(cfg.objective._target_)
    objective_cls.check_family(family, str(cfg.objective.name))
    model = family.load_model(prepared.tokenizer, objective_cls.model_class(family))
    check_vocab(prepared.tokenizer, model.config.vocab_size, str(cfg.model.pretrained))
    objective = objective_cls(cfg.objective, family)
    objective.attach(model)

    if not _is_ddp_child():
        write_run_config(run_dir, cfg, overrides)
    log.info("run directory: %s", run_dir)

    accumulate = int(cfg.trainer.accumulate_grad_batches)
    total_batches = budget.max_steps * accumulate if budget.max_steps else UNBOUNDED_BATCHES
    data = PretrainDataModule(cfg, prepared, total_batches=total_batches,
                              start_batch=start_step * accumulate)
    module = PretrainModule(cfg, model, objective, budget)
    loggers = build_loggers(cfg, run_dir, config_dict, resume_step=start_step if ckpt else None)
    trainer = build_trainer(cfg, run_dir, loggers, total_batches=total_batches,
                            monitor=f"val/{objective.monitor}")
    loggers[0].global_step = lambda: trainer.global_step
    if ckpt is None:  # the starting point of the validation curve (logged at step 0)
        trainer.validate(module, datamodule=data, verbose=False, weights_only=True)
    trainer.fit(module, datamodule=data, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    if module.last_val_step == trainer.global_step:  # fit already validated the final weights
        final = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    else:
        final = trainer.validate(module, datamodule=data, verbose=False, weights_only=True)[0]
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # collective: every rank calls it
    if not trainer.is_global_zero:
        return {}
    export_hf(model, prepared.tokenizer, run_dir / "hf", state_dict=objective.export_state(model),
              extra=lambda folder: objective.export_heads(folder, prepared.tokenizer))
    summary = {
        "run_dir": str(run_dir), "experiment": cfg.experiment, "seed": int(cfg.seed),
        # the sentence-vector pooling configured for this model (what `nlpx eval sts` of it would
        # use unless told otherwise), recorded in every run's summary
        "pooling": str(cfg.model.get("pooling")),
        "final": {k: float(v) for k, v in final.items()},
        "steps": int(trainer.global_step), "tokens_seen": int(module.tokens_seen),
        "train_seconds": round(module.train_seconds, 3), "wall_seconds": round(time.time() - started, 3),
        # the objective's own parts (SBO, a pair head, RTD's generator) train with the model and
        # count with it; a table shared by two of them counts once
        "parameters": sum(p.numel() for p in module.parameters()),
        **objective.describe(model),
        "data": {"cache": str(prepared.path), **{k: prepared.meta[k] for k in
                 ("vocab_size", "train_docs", "val_docs", "train_tokens", "val_tokens")}},
        **summary_info(),
    }
    merge_existing_summary(run_dir / "summary.json", summary)
    atomic_write_json(run_dir / "summary.json", summary)
    for lg in loggers:
        lg.log_metrics({f"final/{k}": v for k, v in summary["final"].items()}, step=trainer.global_step)
    close_loggers(loggers)
    return summary


def quiet_libraries() -> None:
    """Lightning and transformers talk a lot at INFO level; nlpx prints what matters itself."""
    import warnings

    import transformers

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).setLevel(logging.WARNING)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # advice about DataLoader workers does not apply to small CPU runs; nlpx sets them in cfg.data
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`weights_only` was not set.*")
    # nlpx's BucketBatchSampler returns every index (fine-tuning checks it on each evaluation)
    warnings.filterwarnings("ignore", message=".*custom batch sampler `BucketBatchSampler`.*")
    # small fine-tuning sets have fewer batches per epoch than the logging interval
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")


def merge_existing_summary(path: Path, summary: dict) -> None:
    """Keep what other commands recorded in the summary (e.g. GLUE results)."""
    import json

    if path.is_file():
        old = json.loads(path.read_text())
        for key, value in old.items():
            summary.setdefault(key, value)


def _is_ddp_child() -> bool:
    import os

    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
