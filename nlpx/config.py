"""Compose the Hydra config tree into one resolved config, with errors a user can act on.

Kept free of torch/lightning imports: the CLI calls this before anything heavy is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from nlpx.errors import UserError


def conf_dir() -> Path:
    """The config tree: inside the package when installed from a wheel, else the repo's conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise RuntimeError(f"nlpx config tree not found next to {here}")


def group_options() -> dict[str, list[str]]:
    """{group: [options]} read from the folder layout, so `--help` needs no Hydra import.

    A group's sub-folders hold families of options (task/glue/sst2.yaml is option glue/sst2 of
    group task); files and folders starting with "_" are shared bases and data, not options
    (task/glue/_default.yaml, task/glue/_data/).
    """
    root = conf_dir()
    groups: dict[str, list[str]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        groups[sub.name] = sorted(p.relative_to(sub).with_suffix("").as_posix() for p in sub.rglob("*.yaml")
                                  if not any(part.startswith("_") for part in p.relative_to(sub).parts))
    return groups


def option_target(group: str, option: str) -> str:
    """`_target_` of conf/<group>/<option>.yaml, read without composing."""
    import yaml

    path = conf_dir() / group / f"{option}.yaml"
    if not path.is_file():
        raise UserError(f"{group}={option}: unknown option for group '{group}' "
                        f"(valid: {', '.join(group_options().get(group, [])) or 'none yet'})")
    return yaml.safe_load(path.read_text())["_target_"]


def expand_shorthands(overrides: list[str]) -> list[str]:
    """GROUP=NAME where NAME is no option of GROUP but exactly one FAMILY/NAME is: task=sst2
    means task=glue/sst2."""
    groups = group_options()
    out = []
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and key in groups:  # also each value of a sweep, task=sst2,cola
            o = f"{key}=" + ",".join(_full_option(groups[key], v) for v in value.split(","))
        out.append(o)
    return out


MISSING = "???"  # omegaconf's MISSING, spelled out: importing omegaconf here would slow `nlpx --help`


@dataclass
class OptimSchema:
    """optim: AdamW and the linear warm-up / decay schedule, read by every training command."""
    lr: float = MISSING
    warmup: float = MISSING  # a fraction of the budget (< 1) or a number of steps (>= 1)
    weight_decay: float = MISSING
    betas: List[float] = MISSING
    eps: float = MISSING


@dataclass
class BudgetSchema:
    """budget: how long training runs; each command reads the keys that apply to it."""
    max_steps: Optional[int] = None
    max_epochs: Optional[int] = None
    max_tokens: Optional[int] = None
    max_time: Optional[Any] = None  # seconds or "DD:HH:MM:SS"


@dataclass
class TrainerSchema:
    """trainer: Lightning's Trainer settings (nlpx/run/trainer.py); ranges in nlpx/validate.py."""
    name: str = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING  # a count, -1 (all) or a list of device indices
    num_nodes: int = MISSING
    strategy: str = MISSING
    precision: Any = MISSING  # Lightning's names ("bf16-mixed") or an integer (32)
    gradient_clip_val: Optional[float] = None
    accumulate_grad_batches: int = MISSING
    val_check_interval: int = MISSING  # steps
    limit_val_batches: Any = MISSING  # a fraction (float) or a number of batches (int)
    log_every_n_steps: int = MISSING
    checkpoint_every_n_steps: int = MISSING
    deterministic: bool = MISSING
    peak_flops: Optional[float] = None  # FLOP/s for MFU where nlpx's table has no entry (nlpx/run/flops.py)
    checkpoint_every_minutes: Optional[float] = None  # checkpoints by wall time as well as by steps
    keep_checkpoints: int = 1  # step-numbered checkpoints kept (checkpoints/step-*.ckpt)


@dataclass
class RootSchema:
    """The root keys (conf/config.yaml); each config group is typed by its own schema, if any."""
    model: Any = MISSING
    data: Any = MISSING
    optim: Any = MISSING
    budget: Any = MISSING
    objective: Any = MISSING
    trainer: Any = MISSING
    logger: Any = MISSING
    task: Any = None
    trick: Any = None
    eval: Any = None
    generate: Any = None
    seed: int = 0
    experiment: str = "default"
    runs_dir: str = "runs"
    run_id: Optional[str] = None
    resume: Optional[str] = None


# keys that moved (issue 15: one home per setting); giving an old one is an error naming the new
RENAMED = {
    "model.optimizer.lr": "optim.lr", "model.optimizer.betas": "optim.betas", "model.optimizer.eps": "optim.eps",
    "model.optimizer.weight_decay": "optim.weight_decay", "task.lr": "optim.lr", "objective.lr": "optim.lr",
    "trick.lora.lr": "optim.lr", "task.warmup_ratio": "optim.warmup", "trainer.warmup": "optim.warmup",
    "objective.warmup": "optim.warmup", "task.weight_decay": "optim.weight_decay",
    "objective.weight_decay": "optim.weight_decay", "task.adam_betas": "optim.betas", "task.adam_eps": "optim.eps",
    "trainer.max_steps": "budget.max_steps", "task.max_steps": "budget.max_steps",
    "trainer.max_time": "budget.max_time", "trainer.max_tokens": "budget.max_tokens",
    "task.epochs": "budget.max_epochs", "objective.epochs": "budget.max_epochs",
}


def check_renamed(overrides: list[str]) -> None:
    for o in overrides:
        if o.startswith("-"):  # typer passes unknown options through with the overrides
            raise UserError(f"{o}: no such option (--help lists them; config changes are key=value)")
        key = o.split("=", 1)[0].lstrip("+~")
        if key in RENAMED:
            raise UserError(f"{key}: this setting is now {RENAMED[key]} (one home per setting); "
                            f"give {RENAMED[key]}={o.split('=', 1)[1] if '=' in o else '...'}")


# trainer keys only pretraining reads: fine-tuning evaluates the whole dev set after every epoch
# and keeps its best epoch in memory; embedding training validates on STS pairs, no checkpoints
PRETRAINING_ONLY = {
    "trainer.checkpoint_every_n_steps": "checkpoints are pretraining's (a run that {does} keeps none)",
    "trainer.checkpoint_every_minutes": "checkpoints are pretraining's (a run that {does} keeps none)",
    "trainer.keep_checkpoints": "checkpoints are pretraining's (a run that {does} keeps none)",
    "trainer.peak_flops": "FLOPs and MFU are measured for pretraining runs",
    "trainer.limit_val_batches": "{command} evaluates on every validation example",
}
FINETUNING_UNREAD = {
    **PRETRAINING_ONLY,
    "trainer.val_check_interval": "{command} evaluates dev after every epoch (budget.max_epochs sets how many)",
}
EMBEDDING_UNREAD = {
    **PRETRAINING_ONLY,
    "data.batch_size": "{command} batches objective.batch_size sentences (or pairs, triples)",
    "data.seq_len": "{command} cuts sentences at objective.max_length tokens",
    "data.common_eval": "the common masked-LM evaluation set is pretraining's; {command} scores STS pairs",
}
# pretraining objectives that are not masked LMs (clm, plm) have no common evaluation
NO_COMMON_EVAL = {"data.common_eval": "objective={objective} is not a masked LM; the common evaluation set "
                                      "scores masked-LM objectives (mlm, mlm_nsp, sop, span, rtd)"}


def refuse_unread(overrides: list[str], unread: dict[str, str], command: str, does: str = "fine-tunes") -> None:
    """A key the command does not read, given on its command line, is an error naming what it reads
    instead (one home per setting: never silently ignored)."""
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        for prefix, why in unread.items():
            if key == prefix or key.startswith(prefix + "."):
                raise UserError(f"{o}: not read by {command}: " + why.format(command=command, does=does))


def command_overrides(overrides: list[str], *, group: str, option: str, experiment: str, refused: tuple[str, ...],
                      refusal: str, own: str, aliases: tuple[str, ...] = ()) -> list[str]:
    """The overrides of a command that sets `group=option` itself and trains nothing (`nlpx eval mlm`,
    `nlpx generate similar`): a key of a `refused` group (or resume) is `refusal` (formatted with
    the override `o` and its `group`), `group` itself is `own`, a bare alias `k=v` is short for
    `group.k=v`; `experiment` is the default of the experiment key."""
    out = []
    for o in overrides:
        key = o.partition("=")[0].lstrip("+~")
        top = key.split(".")[0]
        if key in aliases:
            o = f"{group}.{o.lstrip('+~')}"
        elif top in refused or key == "resume":
            raise UserError(refusal.format(o=o, group=top))
        elif key == group:
            raise UserError(own.format(o=o))
        out.append(o)
    if not any(o.startswith("experiment=") for o in out):
        out.append(f"experiment={experiment}")
    return out + [f"{group}={option}"]


def register_schemas() -> None:
    """The typed schemas the optim/, budget/ and trainer/ options extend (`defaults: [_schema,
    _self_]`), and the root config's (`defaults: [_root_schema, ...]`)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="optim", name="_schema", node=OptimSchema)
    store.store(group="budget", name="_schema", node=BudgetSchema)
    store.store(group="trainer", name="_schema", node=TrainerSchema)
    store.store(name="_root_schema", node=RootSchema)


def _compose_raw(overrides: list[str], config_name: str = "config"):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from nlpx.config_files import keep_parsed_files

    register_schemas()
    keep_parsed_files()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=list(overrides))
            _check_size(cfg)
            OmegaConf.resolve(cfg)
    finally:
        GlobalHydra.instance().clear()
    return cfg


def _check_size(cfg) -> None:
    """model.size names a preset (checked before resolving: the presets are read through it)."""
    model = cfg.get("model")
    if model is not None and "size" in model and "presets" in model and model.size not in model.presets:
        raise UserError(f"model.size={model.size}: unknown size (valid: {', '.join(model.presets)})")


def compose(overrides: list[str], config_name: str = "config", *, runnable: bool = True):
    """Compose, resolve and validate the config (nlpx/validate.py); user mistakes become one-line
    UserErrors. runnable=False (`nlpx config`): skip the checks of this machine (a GPU)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from nlpx.validate import validate

    check_renamed(overrides)
    try:
        cfg = _compose_raw(expand_shorthands(overrides), config_name)
    except MissingConfigException as e:
        raise UserError(_missing_option_message(str(e))) from None
    except OverrideParseException as e:
        raise UserError(f"cannot parse override: {str(e).splitlines()[0]}") from None
    except ConfigCompositionException as e:
        raise UserError(_composition_message(e, overrides)) from None
    except OmegaConfBaseException as e:
        raise UserError(f"config: {str(e).splitlines()[0]}") from None
    validate(cfg, runnable=runnable)
    return cfg


def _missing_option_message(text: str) -> str:
    m = re.search(r"Could not (?:find|load) '([^']+)/([^'/]+)'", text)
    if not m:
        return f"config: {text.splitlines()[0]}"
    group, option = m.groups()
    valid = group_options().get(group, [])
    return f"{group}={option}: unknown option for group '{group}' (valid: {', '.join(valid) or 'none yet'})"


def _composition_message(e: Exception, overrides: list[str]) -> str:
    text = str(e)
    merging = re.search(r"Error merging override (\S+)", text)
    if merging and e.__cause__ is not None:  # a typed key (optim.*, budget.*) given a wrong type
        return f"{merging.group(1)}: {str(e.__cause__).splitlines()[0]}"
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        key = m.group(1)
        parent, _, leaf = key.rpartition(".")
        valid = _valid_keys(parent, overrides)
        hint = f" (valid keys{' in ' + parent if parent else ''}: {', '.join(valid)})" if valid else ""
        cause = e.__cause__
        if cause is not None and "not in struct" not in str(cause) and "Key '" not in str(cause):
            return f"{key}: {str(cause).splitlines()[0]}"
        return f"{key}: unknown config key{hint}; add a new key with +{key}=..."
    return f"config: {text.splitlines()[0]}"


def _valid_keys(parent: str, overrides: list[str]) -> list[str]:
    """Keys that do exist under `parent`, composing without the failing key overrides."""
    from omegaconf import DictConfig, OmegaConf

    groups = group_options()
    try:
        cfg = _compose_raw([o for o in overrides if o.split("=", 1)[0] in groups])
    except Exception:  # only a hint for the message: never mask the original error
        return []
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return sorted(node.keys()) if isinstance(node, DictConfig) else []


def _full_option(options: list[str], value: str) -> str:
    if value in options:
        return value
    matches = [opt for opt in options if opt.rpartition("/")[2] == value]
    return matches[0] if len(matches) == 1 else value


def override_value(v) -> str:
    """A value as Hydra's override grammar reads it back (key=<this>): lists in brackets, booleans
    in lower case."""
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(override_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def to_yaml(cfg) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg)
