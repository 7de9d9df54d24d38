"""Fine-tune one task: `nlpx train objective=classify task=sst2 model.pretrained=PATH`, and each
task x seed of `nlpx eval glue` (which calls `finetune` with its own run directory per unit)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from nlpx.config import FINETUNING_UNREAD, refuse_unread
from nlpx.errors import UserError
from nlpx.rundir import atomic_write_json, run_dir_for
from nlpx.run.lifecycle import Run, quiet_libraries
from nlpx.run.schedule import check_epoch_budget

log = logging.getLogger("nlpx")


def check_finetune_config(cfg) -> None:
    from nlpx.config import group_options
    from nlpx.finetune.module import SELECT

    if "task" not in cfg or cfg.task is None:
        options = sorted(group_options()["task"], key=lambda o: not o.startswith("glue/"))  # GLUE's first
        short = [o.rpartition("/")[2] for o in options]
        shown = [s if short.count(s) == 1 else o for o, s in zip(options, short)]  # task=sst2 means glue/sst2
        raise UserError(f"objective={cfg.objective.name} needs a task: task=NAME (valid: {', '.join(shown)})")
    if cfg.task.select not in SELECT:
        raise UserError(f"task.select={cfg.task.select}: unknown (valid: {', '.join(SELECT)})")
    check_epoch_budget(cfg.budget, "fine-tuning")
    t = cfg.trainer
    if str(t.devices) not in ("1", "auto") or int(t.num_nodes) != 1 or "ddp" in str(t.strategy):
        raise UserError(f"trainer={t.name}: fine-tuning runs on one device (trainer.devices=1); "
                        "its dev metrics need every prediction in one process")
    if cfg.get("resume"):
        raise UserError("resume: only pretraining runs resume from a checkpoint; `nlpx eval glue "
                        "resume=RUN_DIR` skips the task x seed runs that finished")


def objective_for(cfg, data):
    """The objective objective._target_ names, set up for this task (its labels or entity types)."""
    from hydra.utils import get_class

    return get_class(str(cfg.objective._target_)).for_task(cfg.objective, data)


def objective_unread(cfg) -> dict[str, str]:
    """objective.* keys the chosen objective settings do not read (a tagger's other heads' keys)."""
    from hydra.utils import get_class

    unread = getattr(get_class(str(cfg.objective._target_)), "unread_keys", None)
    return unread(cfg.objective) if unread else {}


def task_info(objective, model_type: str):
    from nlpx.tricks.base import TaskInfo

    return TaskInfo(model_type, **objective.trick_info())


def check_tricks(cfg, model_path: Path, data) -> None:
    """The tricks' task / family conflicts, before any output exists (exit 2)."""
    from nlpx.pretrained import checkpoint_config
    from nlpx.tricks.stack import TrickStack

    TrickStack.build(cfg.get("trick"), task_info(objective_for(cfg, data), checkpoint_config(model_path).model_type))


def load_task_data(cfg, tokenizer, *, with_test: bool = True):
    """The task's data, read by the function its `_target_` names (conf/task/*)."""
    from hydra.utils import get_method

    return get_method(cfg.task._target_)(cfg.task, tokenizer, data=cfg.data, with_test=with_test)


def finetune(cfg, data, *, model_path: Path, run: Run, new_head: bool = False,
             predict_test: bool = True, strict_tricks: bool = True) -> dict:
    """Fine-tune on data.train, evaluate on dev each epoch, keep task.select's epoch; write
    predictions (and hf/ if task.export) under run.run_dir; return the result (also result.json).
    strict_tricks: a trick that cannot apply to this task is exit 2 (else left out, noted)."""
    import torch

    from nlpx.finetune.data import FinetuneDataModule
    from nlpx.finetune.module import FinetuneModule, in_row_order
    from nlpx.run.export import export_hf
    from nlpx.run.trainer import build_finetune_trainer
    from nlpx.tricks.stack import TrickStack

    t, seed, run_dir = cfg.task, int(cfg.seed), run.run_dir
    torch.manual_seed(seed)  # the new head's initialisation is a function of the seed
    objective = objective_for(cfg, data)
    model, tokenizer = objective.build_model(model_path, data.spec, new_head=new_head)
    tricks = TrickStack.build(cfg.get("trick"), task_info(objective, model.config.model_type), strict=strict_tricks)
    model = tricks.prepare_model(model)
    dm = FinetuneDataModule(data, tokenizer, batch_size=int(t.batch_size),
                            eval_batch_size=int(t.eval_batch_size), seed=seed,
                            num_workers=int(cfg.data.num_workers), collate=objective.collate,
                            bucket_window=int(t.bucket_window))
    accumulate = int(cfg.trainer.accumulate_grad_batches)
    steps_per_epoch = math.ceil(dm.train_batches_per_epoch() / accumulate)
    budget = cfg.budget
    total = int(budget.max_epochs) * steps_per_epoch
    if budget.max_steps:
        total = min(total, int(budget.max_steps))
    module = FinetuneModule(cfg, model, objective, data, total_steps=total, steps_per_epoch=steps_per_epoch,
                            tricks=tricks)
    trainer = build_finetune_trainer(cfg, run_dir, run.loggers, max_epochs=int(budget.max_epochs),
                                     max_steps=int(budget.max_steps) if budget.max_steps else None)
    run.follow(trainer)
    trainer.fit(module, datamodule=dm)
    train_seconds = module.train_seconds
    if not module.evaluations or module.evaluations[-1]["step"] != trainer.global_step:
        trainer.validate(module, datamodule=dm, verbose=False)
    module.restore_kept()
    kept = module.kept

    for split in data.dev:
        data.spec.write_dev(run_dir / "predictions" / "dev", split, module.kept_dev_predictions[split.name])
    test_files, test_metrics = {}, {}
    # a labelled test set (FewCLUE's test_public, the reported split) is scored whatever predict_test
    # says; predict_test is about the benchmark-server files
    if data.test and (predict_test or any(s.score_as is not None for s in data.test)):
        outputs = trainer.predict(module, dataloaders=dm.predict_dataloader())
        if len(data.test) == 1:
            outputs = [outputs]
        for split, out in zip(data.test, outputs):
            preds = in_row_order(out, len(split.encoded))
            if predict_test:
                path = data.spec.write_test(run_dir / "predictions" / "test", split, preds)
                test_files[path.name] = str(path)
            if split.score_as is not None:
                test_metrics[split.name] = data.spec.split_metrics(split.score_as, preds, split.encoded.labels)
    parameters = {id(p): (p.numel(), p.requires_grad) for p in model.parameters()}
    tricks.save(model, run_dir)
    if t.export:
        export_hf(tricks.export_model(model), tokenizer, run_dir / "hf")

    dev_examples = sum(len(s.examples) for s in data.dev)
    result = {
        "task": str(t.name), "seed": seed, "select": str(t.select),
        "metrics": kept["metrics"], "score": kept["score"], "epoch": kept["epoch"], "step": kept["step"],
        "evaluations": module.evaluations, "steps": int(trainer.global_step),
        "train_examples": len(data.train.examples), "examples_seen": module.examples_seen,
        "train_seconds": round(train_seconds, 3),
        "train_examples_per_s": module.examples_seen / train_seconds if train_seconds > 0 else None,
        "eval_examples_per_s": (dev_examples * len(module.evaluations) / module.val_seconds
                                if module.val_seconds > 0 else None),
        "parameters": sum(n for n, _ in parameters.values()),
        "trainable_parameters": sum(n for n, trains in parameters.values() if trains),
        "tricks": {"applied": tricks.names, "settings": tricks.settings(), "skipped": tricks.skipped,
                   **tricks.describe(),
                   "passes_per_step": module.passes_per_step(),
                   "final": tricks.metrics()},
        "model": str(model_path), "new_head": new_head,
        "test_predictions": test_files, "test_metrics": test_metrics, "hf": str(run_dir / "hf") if t.export else None,
    }
    atomic_write_json(run_dir / "result.json", result)
    return result


def finetune_run(cfg, overrides: list[str]) -> dict:
    """`nlpx train objective=classify ...`: one task, one seed, in runs/<experiment>/<run_id>/."""
    from nlpx.data.tokenizer import load_tokenizer
    from nlpx.finetune.model import checkpoint_path

    quiet_libraries()
    refuse_unread(overrides, FINETUNING_UNREAD, "fine-tuning")
    refuse_unread(overrides, objective_unread(cfg), "fine-tuning")
    check_finetune_config(cfg)
    path = checkpoint_path(cfg)
    data = load_task_data(cfg, load_tokenizer(path, key="model.pretrained"))
    check_tricks(cfg, path, data)
    # a UserError found once the model is built (a LoRA target it lacks) removes the run directory
    with Run.start(cfg, overrides, run_dir_for(cfg)) as run:
        result = finetune(cfg, data, model_path=path, run=run)
        final = {**{f"val/{k}": v for k, v in result["metrics"].items()}, "val/score": result["score"]}
        # model.pooling is recorded in every run's summary; a classifier itself reads the family's head
        summary = {"run_dir": str(run.run_dir), "experiment": cfg.experiment,
                   "pooling": str(cfg.model.get("pooling")), **result, "final": final}
        return run.summarize(summary, final=final, step=result["steps"])
