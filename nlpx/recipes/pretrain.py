"""`nlpx train` with a pretraining objective (mlm, mlm_nsp, sop, span, clm, rtd):
check and prepare the corpus -> model + objective -> fit (resumable) -> validate -> hf/ -> summary."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from nlpx.config import NO_COMMON_EVAL, refuse_unread
from nlpx.errors import UserError
from nlpx.validate import validate
from nlpx.rundir import run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries

log = logging.getLogger("nlpx")


def resume_config(cfg, overrides: list[str]):
    """The saved config of the run to resume, with key=value overrides (say, a longer budget),
    its directory and its last checkpoint (None: it stopped before the first one)."""
    from omegaconf import OmegaConf

    run_dir = Path(str(cfg.resume))
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise UserError(f"resume={cfg.resume}: not an nlpx run directory (no config.yaml)")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():  # stopped before its first checkpoint: it starts again, same config
        ckpt = None
    changes = [o for o in overrides if not o.startswith("resume=")]
    if any("." not in o.split("=", 1)[0] and not o.startswith("+") for o in changes):
        raise UserError("resume: only key=value overrides (a.b=c) can change a resumed run, "
                        f"not group choices: {' '.join(changes)}")
    resumed = OmegaConf.merge(upgraded(OmegaConf.load(saved)), OmegaConf.from_dotlist(changes))
    resumed.resume, resumed.run_id = str(run_dir), run_dir.name
    resumed.runs_dir, resumed.experiment = str(run_dir.parent.parent), run_dir.parent.name
    validate(resumed)
    return resumed, run_dir, ckpt


def checkpoint_step(ckpt: Path) -> int:
    """The optimizer step a checkpoint was saved at; a damaged file is the user's to replace."""
    import torch

    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
    except Exception as e:  # torch raises RuntimeError, EOFError or an unpickling error
        raise UserError(f"resume: {ckpt} cannot be read ({str(e).splitlines()[0][:120]}); the file is "
                        f"damaged: delete it to start the run again, or restore it") from None


def upgraded(saved):
    """The config of a run made before optim/budget existed (model.optimizer, trainer.max_steps,
    ...), with those settings moved to their homes, so that it resumes as it would have."""
    if "optim" in saved:
        return saved
    opt, t = saved.model.pop("optimizer"), saved.trainer
    saved.optim = {"lr": opt.lr, "warmup": t.pop("warmup"), "weight_decay": opt.weight_decay,
                   "betas": list(opt.betas), "eps": opt.eps}
    saved.budget = {"max_steps": t.pop("max_steps"), "max_time": t.pop("max_time"),
                    "max_tokens": t.pop("max_tokens"), "max_epochs": None}
    return saved


def pretrain(cfg, overrides: list[str]) -> dict:
    import torch
    from hydra.utils import get_class

    from nlpx.data.prepare import prepare_corpus
    from nlpx.pretrained import check_vocab
    from nlpx.train.datamodule import PretrainDataModule
    from nlpx.run.export import export_hf
    from nlpx.run.flops import summary as flops_summary
    from nlpx.train.module import PretrainModule
    from nlpx.run.schedule import UNBOUNDED_BATCHES, Budget
    from nlpx.run.trainer import build_trainer
    from nlpx.tricks.stack import check_not_pretraining

    quiet_libraries()
    started = time.time()
    check_not_pretraining(cfg)
    ckpt, start_step, resuming = None, 0, bool(cfg.resume)
    if resuming:
        cfg, run_dir, ckpt = resume_config(cfg, overrides)
        if ckpt is not None:
            start_step = checkpoint_step(ckpt)
    else:
        run_dir = run_dir_for(cfg)
    if cfg.get("task") is not None:
        raise UserError(f"task={cfg.task.name}: a task is read by fine-tuning (objective=classify or nlpx eval "
                        f"glue), not objective={cfg.objective.name}")
    budget = Budget.from_cfg(cfg.budget, cfg.optim)

    # everything a user can get wrong is checked before the run directory exists
    family = get_class(cfg.model._target_)(cfg.model)
    objective_cls = get_class(cfg.objective._target_)
    objective_cls.check_family(family, str(cfg.objective.name))
    prepared = prepare_corpus(cfg)
    torch.manual_seed(int(cfg.seed))  # the random init is a function of the seed
    model = family.load_model(prepared.tokenizer, objective_cls.model_class(family))
    check_vocab(prepared.tokenizer, model.config.vocab_size, str(cfg.model.pretrained))
    objective = objective_cls(cfg.objective, family)
    objective.attach(model)
    common = None
    if objective_cls.common_eval:
        from nlpx.data.common_eval import common_eval_set

        ce = cfg.data.common_eval
        common = common_eval_set(prepared, int(ce.seq_len), None if ce.max_examples is None else int(ce.max_examples))
    else:
        refuse_unread(overrides, {k: v.format(objective=cfg.objective.name) for k, v in NO_COMMON_EVAL.items()},
                      "nlpx train")

    accumulate = int(cfg.trainer.accumulate_grad_batches)
    total_batches = budget.max_steps * accumulate if budget.max_steps else UNBOUNDED_BATCHES
    data = PretrainDataModule(cfg, prepared, total_batches=total_batches, start_batch=start_step * accumulate)
    module = PretrainModule(cfg, model, objective, budget, common=common)
    # a DDP rank other than 0 re-runs this command and joins rank 0's run directory
    with Run.start(cfg, overrides, run_dir, resume_step=(start_step if ckpt else -1) if resuming else None,
                   owner=not _is_ddp_child(), fresh=not resuming and not _is_ddp_child(),
                   resume=f"nlpx train resume={run_dir}") as run:
        trainer = build_trainer(cfg, run_dir, run.loggers, total_batches=total_batches,
                                monitor=f"val/{objective.monitor}")
        run.follow(trainer)
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
        export_hf(model, family.export_tokenizer(prepared.tokenizer), run_dir / "hf", state_dict=objective.export_state(model),
                  extra=lambda folder: objective.export_heads(folder, prepared.tokenizer))
        final = {k: float(v) for k, v in final.items()}
        summary = {
            "run_dir": str(run_dir), "experiment": cfg.experiment, "seed": int(cfg.seed),
            # the sentence-vector pooling configured for this model (what `nlpx eval sts` of it would
            # use unless told otherwise), recorded in every run's summary
            "pooling": str(cfg.model.get("pooling")),
            "final": final,
            "steps": int(trainer.global_step), "tokens_seen": int(module.tokens_seen),
            "train_seconds": round(module.train_seconds, 3), "wall_seconds": round(time.time() - started, 3),
            # the objective's own parts (SBO, a pair head, RTD's generator) train with the model and
            # count with it; a table shared by two of them counts once
            "parameters": sum(p.numel() for p in module.parameters()),
            "flops": flops_summary(module.flops_per_token, module.tokens_seen, module.train_seconds,
                                   module.peak_flops),
            **objective.describe(model),
            "data": {"cache": str(prepared.path), **{k: prepared.meta[k] for k in
                     ("vocab_size", "train_docs", "val_docs", "train_tokens", "val_tokens")}},
        }
        # keep_existing: what other commands recorded in this run's summary (a GLUE evaluation)
        return run.summarize(summary, final=final, step=trainer.global_step, keep_existing=True)


def _is_ddp_child() -> bool:
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
