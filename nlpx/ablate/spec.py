"""Experiment specs (`experiments/<name>.yaml`) and their grid: arms × seeds, each cell a list of
stages (`nlpx train`, then `nlpx eval glue`, `nlpx eval sts` or `nlpx eval mlm`, ...), each stage a list
of overrides.

A spec:

    description: one paragraph: the question and the paper it comes from
    stages:                     # run in order for every cell
      - {name: pretrain, command: train}
      - {name: glue, command: eval glue, overrides: ["model.pretrained={pretrain}", "eval.tasks=[rte]"]}
    base: [model=bert, data=text, ...]      # every cell; a list goes to the first stage,
                                            # a mapping {stage: [...]} to the stages it names
    arms:                                   # named arms (same list-or-mapping rule) ...
      nsp: [objective=mlm_nsp]
      no_nsp: [objective=mlm]
    axes:                                   # ... and/or axes: the Cartesian product of their
      objective.masking.ratio: [0.15, 0.3]  # values forms arms (crossed with the named arms)
    baseline: nsp                           # the arm every other arm is compared with
    seeds: [0, 1, 2]
    metrics: [val/mlm_loss, glue/score]     # what the report tabulates (first: headline)
    sizes:                                  # named sizes, at least smoke and full, that override
      smoke: {pretrain: [model.size=tiny, budget.max_steps=20]}  # model size, steps, data
      full: {pretrain: [model.size=mini, budget.max_steps=2000]}

`{stage}` in an override is the run directory of that earlier stage of the same cell. A cell's
seed goes to each stage as the command takes it (`seed=k`; `eval.seeds=[k]`). Order of
overrides in a stage: base, size, arm, the stage's own, the command line's (`key=value` for the
first stage, `STAGE:key=value` for any), then nlpx's own (seed, run directory): a later one wins.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from nlpx.config import override_value
from nlpx.errors import UserError

COMMANDS = ("train", "eval glue", "eval sts", "eval mlm")
# the commands that train nothing (no checkpoint to resume: an interrupted one starts again), and
# the function that turns a stage's overrides into the ones they compose with
NO_TRAINING = {"eval sts": "nlpx.recipes.eval_sts.sts_overrides", "eval mlm": "nlpx.recipes.eval_mlm.mlm_overrides"}
REQUIRED_SIZES = ("smoke", "full")
KEYS = ("description", "stages", "base", "arms", "axes", "baseline", "seeds", "metrics", "sizes")
STAGE_KEYS = ("name", "command", "overrides")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# keys that say where a run goes or how it is logged, not what it computes: not in a cell's hash
VOLATILE = ("runs_dir", "run_id", "resume", "experiment", "logger")


@dataclass(frozen=True)
class Stage:
    name: str
    command: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    name: str
    path: Path
    description: str
    stages: tuple[Stage, ...]
    base: dict[str, tuple[str, ...]]
    arms: dict[str, dict[str, tuple[str, ...]]]  # arm -> stage -> overrides (axes already crossed)
    baseline: str
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    sizes: dict[str, dict[str, tuple[str, ...]]]


@dataclass
class Cell:
    arm: str
    seed: int
    stages: dict[str, list[str]]  # stage -> its overrides, placeholders still in
    key: str = ""                 # hash of the resolved configs of its stages
    run_dirs: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.arm}/seed{self.seed}"


# -- finding and reading ---------------------------------------------------------------------
def experiments_dir() -> Path:
    """experiments/ inside the package when installed from a wheel, else the repo's."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "experiments", here.parent / "experiments"):
        if candidate.is_dir():
            return candidate
    return here.parent / "experiments"


def shipped() -> dict[str, Path]:
    return {p.stem: p for p in sorted(experiments_dir().glob("*.yaml"))}


def find(name: str) -> Path:
    """NAME (a shipped experiment) or a path to a spec file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    specs = shipped()
    if name not in specs:
        raise UserError(f"ablate {name}: no such experiment (shipped: {', '.join(specs) or 'none'}; "
                        "or give the path of a spec .yaml)")
    return specs[name]


def load(name: str) -> Spec:
    from omegaconf import OmegaConf

    path = find(name)
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as e:  # a YAML syntax error: omegaconf/yaml say where
        raise UserError(f"{path}: not a valid YAML spec: {str(e).splitlines()[0]}") from None
    return parse(raw, path)


def parse(raw, path: Path) -> Spec:
    where = str(path)
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a spec is a mapping with keys {', '.join(KEYS)}")
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (valid: {', '.join(KEYS)})")
    stages = _stages(raw.get("stages"), where)
    names = [s.name for s in stages]
    base = _by_stage(raw.get("base") or [], names, f"{where}: base")
    arms = {str(k): _by_stage(v or [], names, f"{where}: arms.{k}") for k, v in (raw.get("arms") or {}).items()}
    arms = _cross_axes(arms, raw.get("axes") or {}, names, where)
    if not arms:
        raise UserError(f"{where}: no arms (give `arms:` with named override lists, or `axes:`)")
    baseline = str(raw.get("baseline") or next(iter(arms)))
    if baseline not in arms:
        raise UserError(f"{where}: baseline: '{baseline}' is not an arm (arms: {', '.join(arms)})")
    seeds = raw.get("seeds") or [0]
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise UserError(f"{where}: seeds: a list of distinct integers, got {seeds!r}")
    metrics = raw.get("metrics") or []
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise UserError(f"{where}: metrics: a non-empty list of metric names (e.g. val/mlm_loss, glue/score)")
    sizes_raw = raw.get("sizes") or {}
    if not isinstance(sizes_raw, dict):
        raise UserError(f"{where}: sizes: a mapping of size name -> overrides")
    missing = [s for s in REQUIRED_SIZES if s not in sizes_raw]
    if missing:
        raise UserError(f"{where}: sizes: '{missing[0]}' is missing (every spec has {', '.join(REQUIRED_SIZES)})")
    sizes = {str(k): _by_stage(v or [], names, f"{where}: sizes.{k}") for k, v in sizes_raw.items()}
    return Spec(name=path.stem, path=path, description=str(raw.get("description") or "").strip(),
                stages=stages, base=base, arms=arms, baseline=baseline, seeds=tuple(seeds),
                metrics=tuple(metrics), sizes=sizes)


def _stages(raw, where: str) -> tuple[Stage, ...]:
    if not raw:
        raise UserError(f"{where}: stages: at least one stage ({{name: pretrain, command: train}})")
    out = []
    for i, s in enumerate(raw):
        if not isinstance(s, dict) or "name" not in s or "command" not in s:
            raise UserError(f"{where}: stages[{i}]: a mapping with name and command")
        unknown = sorted(set(s) - set(STAGE_KEYS))
        if unknown:
            raise UserError(f"{where}: stages[{i}]: unknown key '{unknown[0]}' (valid: {', '.join(STAGE_KEYS)})")
        if s["command"] not in COMMANDS:
            raise UserError(f"{where}: stages[{i}].command: '{s['command']}' (valid: {', '.join(COMMANDS)})")
        overrides = _overrides(s.get("overrides") or [], f"{where}: stages[{i}].overrides")
        earlier = [o.name for o in out]
        for o in overrides:
            for ref in PLACEHOLDER.findall(o):
                if ref not in earlier:
                    raise UserError(f"{where}: stages[{i}].overrides: {{{ref}}} names no earlier stage "
                                    f"(earlier: {', '.join(earlier) or 'none'})")
        out.append(Stage(str(s["name"]), str(s["command"]), overrides))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise UserError(f"{where}: stages: names must be distinct, got {', '.join(names)}")
    return tuple(out)


def _overrides(raw, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(o, str) and "=" in o for o in raw):
        raise UserError(f"{where}: a list of key=value overrides, got {raw!r}")
    return tuple(raw)


def _by_stage(raw, stages: list[str], where: str) -> dict[str, tuple[str, ...]]:
    """A list (the first stage's overrides) or {stage: list} -> {stage: overrides}."""
    if isinstance(raw, list):
        return {stages[0]: _overrides(raw, where)} if raw else {}
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a list of overrides or a mapping stage -> overrides")
    for stage in raw:
        if stage not in stages:
            raise UserError(f"{where}: '{stage}' is not a stage (stages: {', '.join(stages)})")
    return {stage: _overrides(v or [], f"{where}.{stage}") for stage, v in raw.items()}


def _cross_axes(arms: dict, axes, stages: list[str], where: str) -> dict:
    """Named arms × the Cartesian product of the axes; an axis arm is named key=value,..."""
    if not axes:
        return arms
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise UserError(f"{where}: axes: a mapping key -> non-empty list of values")
    combos = []
    for values in itertools.product(*axes.values()):
        pairs = [f"{k}={override_value(v)}" for k, v in zip(axes, values)]
        combos.append((",".join(pairs), pairs))
    if not arms:
        return {name: {stages[0]: tuple(pairs)} for name, pairs in combos}
    out = {}
    for arm, by_stage in arms.items():
        for name, pairs in combos:
            merged = dict(by_stage)
            merged[stages[0]] = tuple(merged.get(stages[0], ())) + tuple(pairs)
            out[f"{arm}/{name}"] = merged
    return out


# -- the grid ---------------------------------------------------------------------------------
def seed_override(command: str, seed: int) -> str:
    # eval sts / mlm train nothing: the seed only fixes the init of weights a checkpoint lacks
    return f"eval.seeds=[{seed}]" if command == "eval glue" else f"seed={seed}"


def split_extra(spec: Spec, extra: list[str]) -> dict[str, list[str]]:
    """Command-line overrides per stage: `STAGE:key=value` goes to that stage, a plain one to the
    first stage (the others compose other groups: a pretraining key would not exist there)."""
    names = [s.name for s in spec.stages]
    out: dict[str, list[str]] = {n: [] for n in names}
    for o in extra:
        head, sep, rest = o.partition(":")
        if sep and "=" not in head and head in names:
            out[head].append(rest)
        elif sep and "=" not in head:
            raise UserError(f"{o}: '{head}' is not a stage of {spec.name} (stages: {', '.join(names)})")
        else:
            out[names[0]].append(o)
    return out


def cells(spec: Spec, size: str, extra: list[str] | None = None) -> list[Cell]:
    """Every arm × seed, arms in spec order, seeds inner; overrides per stage."""
    if size not in spec.sizes:
        raise UserError(f"--size {size}: not a size of {spec.name} (sizes: {', '.join(spec.sizes)})")
    extra_by_stage = split_extra(spec, list(extra or []))
    out = []
    for arm, arm_overrides in spec.arms.items():
        for seed in spec.seeds:
            stages = {}
            for stage in spec.stages:
                stages[stage.name] = [*spec.base.get(stage.name, ()), *spec.sizes[size].get(stage.name, ()),
                                      *arm_overrides.get(stage.name, ()), *stage.overrides,
                                      *extra_by_stage[stage.name], seed_override(stage.command, seed)]
            out.append(Cell(arm, seed, stages))
    return out


def resolved(cell: Cell, spec: Spec) -> dict[str, dict]:
    """Each stage's composed config (placeholders as `__stage__`), without where-it-goes keys:
    composing every cell up front also finds every bad override before anything runs."""
    out = {}
    for stage in spec.stages:
        overrides = [PLACEHOLDER.sub(lambda m: f"__{m.group(1)}__", o) for o in cell.stages[stage.name]]
        # the seed (always the last override) is set in the result: the seeds of an arm share
        # one composition (no config value interpolates the seed), ~0.1 s per Hydra compose
        config = json.loads(_composed(stage.command, tuple(overrides[:-1]), _nlpx_env()))
        if stage.command == "train":
            config["seed"] = cell.seed
        else:
            config["eval"]["seeds"] = [cell.seed]
        out[stage.name] = config
    return out


def _nlpx_env() -> tuple[tuple[str, str], ...]:
    """The NLPX_* variables the configs read (${oc.env:NLPX_DATA}, NLPX_CACHE): part of the
    composition cache's key, or a second plan in one process under other values would reuse
    configs resolved under the first."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("NLPX_")))


@functools.lru_cache(maxsize=256)
def _composed(command: str, overrides: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> str:
    from omegaconf import OmegaConf

    from nlpx.config import compose

    def plain(cfg) -> dict:
        return {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in VOLATILE}

    if command == "train":
        return json.dumps(plain(compose(list(overrides), runnable=False)), sort_keys=True, default=str)
    if command in NO_TRAINING:
        from hydra.utils import get_method

        return json.dumps(plain(compose(get_method(NO_TRAINING[command])(list(overrides)), runnable=False)),
                          sort_keys=True, default=str)
    # eval glue composes task.* per task, as `nlpx eval glue` does
    from nlpx.eval.glue_metrics import GLUE_TASKS
    from nlpx.recipes.eval_benchmark import glue_overrides

    user = glue_overrides(list(overrides))
    base = compose([o for o in user if not o.lstrip("+~").startswith("task.")], runnable=False)
    tasks = [str(t) for t in base.eval.tasks] or list(GLUE_TASKS)
    config = {**plain(base), "tasks": {t: plain(compose(user + [f"task=glue/{t}"], runnable=False))["task"]
                                       for t in tasks}}
    return json.dumps(config, sort_keys=True, default=str)


def cell_key(stages: dict[str, dict]) -> str:
    """12 hex digits of the SHA-256 of the resolved stage configs (sorted JSON)."""
    blob = json.dumps(stages, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def dir_name(arm: str) -> str:
    """An arm's folder: characters a path override can carry unquoted (an axis arm is
    key=value); the cell folder's key tells apart two arms that map to one name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", arm)


def uses_ddp(config: dict) -> bool:
    return str(config.get("trainer", {}).get("strategy", "")).startswith("ddp")


def plan(spec: Spec, size: str, extra: list[str] | None, root: Path) -> list[Cell]:
    """The cells with their keys and run directories under root (runs/ablate/<name>)."""
    out = cells(spec, size, extra)
    for cell in out:
        configs = resolved(cell, spec)
        for stage in spec.stages:
            if stage.command != "train" and uses_ddp(configs[stage.name]):
                raise UserError(f"{cell.name} {stage.name}: trainer=ddp applies to pretraining stages only "
                                f"(fine-tuning runs on one device); write {spec.stages[0].name}:trainer=ddp")
        cell.key = cell_key(configs)
        home = root / "cells" / dir_name(cell.arm) / f"seed{cell.seed}-{cell.key}"
        cell.run_dirs = {stage.name: home / stage.name for stage in spec.stages}
    return out
