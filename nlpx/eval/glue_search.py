"""The fine-tuning recipe search of `nlpx eval glue` (eval.search): every configuration of a small
grid over the ordinary keys x every seed; per task, the configuration with the best median dev
score is the one reported (the BERT paper's protocol, with the median over seeds so that one lucky
seed does not pick it).

The space names each setting's one home (optim.lr, budget.max_epochs, task.batch_size, trick.*):
a key given both there and as an override is an error, not a second home. `eval.search=auto`
takes the space of `eval.search_spaces` for the checkpoint's hidden size: small models need
learning rates 10-50 times BERT-base's.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from pathlib import Path

from nlpx.config import override_value
from nlpx.errors import UserError

SEARCHABLE = ("optim.", "budget.", "task.", "trick.")


def hidden_size(model_path: Path) -> int:
    from nlpx.pretrained import checkpoint_config

    return int(checkpoint_config(model_path).hidden_size)


def resolve_space(ev, model_path: Path, overrides: list[str]) -> tuple[dict[str, list], str | None]:
    """(space {key: values}, where it came from) for eval.search; ({}, None) without a search."""
    from omegaconf import DictConfig, OmegaConf

    search = ev.get("search")
    if search is None:
        return {}, None
    if isinstance(search, str):
        if search != "auto":
            raise UserError(f"eval.search={search}: give auto, null or a mapping "
                            "{optim.lr:[1e-4,3e-4],budget.max_epochs:[3,10]}")
        width = hidden_size(model_path)
        for entry in ev.search_spaces:
            if entry.max_hidden is None or width <= int(entry.max_hidden):
                space, origin = OmegaConf.to_container(entry.space), f"auto: hidden size {width}"
                break
        else:
            raise UserError(f"eval.search_spaces: no entry covers hidden size {width} "
                            "(the last entry's max_hidden: null covers every width)")
    elif isinstance(search, DictConfig):
        space, origin = OmegaConf.to_container(search), "eval.search"
    else:
        raise UserError(f"eval.search={search}: give auto, null or a mapping of key -> list of values")
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}
    for key, values in space.items():
        if not str(key).startswith(SEARCHABLE):
            raise UserError(f"eval.search: {key} is not a fine-tuning setting "
                            f"(searchable: {', '.join(p + '*' for p in SEARCHABLE)})")
        if key in given:
            raise UserError(f"eval.search: {key} is also given as {key}=...; a setting has one home "
                            "(drop one of the two)")
        if not isinstance(values, list) or not values:
            raise UserError(f"eval.search: {key} needs a non-empty list of values, got {values!r}")
    return space, origin


def configurations(space: dict[str, list]) -> list[list[str]]:
    """Every combination as a list of overrides, in the space's order ([[]]: no search)."""
    keys = list(space)
    return [[f"{k}={override_value(v)}" for k, v in zip(keys, values)]
            for values in itertools.product(*(space[k] for k in keys))]


def config_name(overrides: list[str]) -> str:
    """A configuration's folder and label: its overrides, joined, in characters a path keeps."""
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "-", ",".join(overrides))


def median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def pick(per_config: dict[str, list[dict]]) -> tuple[str, list[dict]]:
    """The configuration with the best median dev task score over its seeds (the first on a tie;
    a configuration whose every seed scored nan loses) and one row per configuration."""
    table = [{"config": name, "median": median([r["score"] for r in results]), "n": len(results)}
             for name, results in per_config.items()]
    best = max(table, key=lambda row: row["median"] if math.isfinite(row["median"]) else -math.inf)
    return best["config"], table
