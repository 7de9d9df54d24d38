"""`nlpx train -m ...`: Hydra's own multirun (sweeper + launcher), behind an upfront check.

Hydra's compose API has no multirun, so the sweep goes through a `@hydra.main` entry point; every
combination is composed first, so a typo fails with one line before any job starts.
"""

from __future__ import annotations

import itertools
import sys

from nlpx.config import compose, conf_dir, expand_shorthands
from nlpx.errors import UserError


def expand(overrides: list[str]) -> list[list[str]]:
    """The override lists of every job, as Hydra's basic sweeper forms them (Cartesian product)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as e:  # Hydra raises its own parse exception with a multi-line message
        raise UserError(f"cannot parse overrides: {str(e).splitlines()[0]}") from None
    choices = []
    for o in parsed:
        if o.is_sweep_override():
            values = list(o.sweep_string_iterator())
            choices.append([f"{o.get_key_element()}={v}" for v in values])
        else:
            choices.append([o.input_line])
    return [list(c) for c in itertools.product(*choices)]


def multirun(overrides: list[str]) -> None:
    jobs = expand(overrides)
    for job in jobs:
        compose(job)
    import hydra

    from nlpx.recipes.train import train

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
    def _job(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        job_overrides = list(HydraConfig.get().overrides.task)
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))  # drop the hydra node
        train(cfg, job_overrides)

    argv = sys.argv
    sys.argv = [argv[0], "--multirun", *expand_shorthands(overrides)]
    try:
        _job()
    finally:
        sys.argv = argv
