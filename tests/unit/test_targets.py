"""Config to code through `_target_`: every option of the trick, logger and data groups (and every
task) names the class or function that reads it, the loggers are built from it, and no code picks
a component of these groups by comparing option names."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml
from hydra.utils import get_class, get_method
from omegaconf import OmegaConf

from nlpx.config import compose, conf_dir, group_options, option_target
from nlpx.errors import UserError

REPO = Path(__file__).resolve().parents[2]

TARGETS = {
    ("trick", "asl"): "nlpx.tricks.asl.ASL",
    ("trick", "awp"): "nlpx.tricks.awp.AWP",
    ("trick", "llrd"): "nlpx.tricks.llrd.LLRD",
    ("trick", "lora"): "nlpx.tricks.lora.LoRA",
    ("trick", "multi_dropout"): "nlpx.tricks.multi_dropout.MultiDropout",
    ("trick", "rdrop"): "nlpx.tricks.rdrop.RDrop",
    ("trick", "sift"): "nlpx.tricks.sift.SiFT",
    ("logger", "csv"): "nlpx.run.loggers.csv_logger",
    ("logger", "none"): "nlpx.run.loggers.no_logger",
    ("logger", "wandb"): "nlpx.run.loggers.wandb_logger",
    ("data", "clue"): "nlpx.finetune.clue_data.ClueData",
    ("data", "fewclue"): "nlpx.finetune.clue_data.FewClueData",
    ("data", "glue"): "nlpx.finetune.data.GlueData",
    ("data", "pairs"): "nlpx.embeddings.data.ScoredPairs",
    ("data", "synthetic"): "nlpx.data.corpora.SyntheticCorpus",
    ("data", "text"): "nlpx.data.corpora.TextCorpus",
    ("data", "triples"): "nlpx.embeddings.data.Triples",
}
TASK_TARGETS = {f"glue/{t}": "nlpx.finetune.data.load_glue_task"
                for t in ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli")}
TASK_TARGETS.update({f"clue/{t}": "nlpx.finetune.clue_data.load_clue_task"
                     for t in ("afqmc", "tnews", "iflytek", "cmnli", "ocnli", "cluewsc2020", "csl")})
TASK_TARGETS.update({f"fewclue/{t}": "nlpx.finetune.clue_data.load_fewclue_task"
                     for t in ("eprstmt", "bustm", "ocnli", "csldcp", "tnews", "iflytek", "csl", "cluewsc", "chid")})
TASK_TARGETS.update({"multilabel/jsonl": "nlpx.finetune.multilabel.load_jsonl",
                     "multilabel/synthetic": "nlpx.finetune.multilabel.load_synthetic"})
TASK_TARGETS.update({f"ner/{t}": "nlpx.finetune.tagging_data.load_conll" for t in ("conll", "conll2003")})
TASK_TARGETS.update({f"ner/{t}": "nlpx.finetune.tagging_data.load_span_json" for t in ("span_json", "cluener")})
TASK_TARGETS.update({f"qa/{t}": "nlpx.finetune.qa_data.load_squad" for t in ("squad", "cmrc2018")})


def test_every_trick_logger_and_data_option_names_its_code():
    options = {(g, o) for g in ("trick", "logger", "data") for o in group_options()[g]}
    assert options == set(TARGETS)
    for (group, option), target in TARGETS.items():
        own = yaml.safe_load((conf_dir() / group / f"{option}.yaml").read_text())
        assert own["_target_"] == target == option_target(group, option)
        composed = compose([f"{group}={option}"])
        assert (composed.trick[option] if group == "trick" else composed[group])._target_ == target
        if group == "logger":
            assert inspect.isfunction(get_method(target))
        else:
            assert inspect.isclass(get_class(target))
    from nlpx.tricks.base import Trick

    assert all(issubclass(get_class(t), Trick) for (g, _), t in TARGETS.items() if g == "trick")
    kinds = {o: get_class(t).kind for (g, o), t in TARGETS.items() if g == "data"}
    assert kinds == {"clue": "clue", "fewclue": "fewclue", "glue": "glue", "pairs": "pairs", "synthetic": "sentences", "text": "sentences",
                     "triples": "triples"}


def test_every_task_names_the_function_that_reads_its_data():
    assert set(group_options()["task"]) == set(TASK_TARGETS)
    for option, target in TASK_TARGETS.items():
        assert compose(["objective=classify", f"task={option}"]).task._target_ == target
        assert inspect.isfunction(get_method(target))
        assert list(inspect.signature(get_method(target)).parameters) == ["t", "tokenizer", "data", "with_test"]


def test_an_unknown_option_target_is_a_user_error():
    with pytest.raises(UserError) as e:
        option_target("logger", "tensorboard")
    assert str(e.value) == "logger=tensorboard: unknown option for group 'logger' (valid: csv, none, wandb)"


# == loggers =========================================================================================
def test_build_loggers_from_the_logger_target(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    from nlpx.run.loggers import JsonlLogger, build_loggers

    def types(option, *extra):
        cfg = compose([f"logger={option}", *extra])
        return [type(lg) for lg in build_loggers(cfg, tmp_path / option, {"seed": 0}, None)]

    assert types("none") == [JsonlLogger]
    assert types("csv") == [JsonlLogger, CSVLogger]
    assert types("wandb") == [JsonlLogger, WandbLogger]
    cfg = compose(["logger=wandb", "experiment=exp"])
    wandb = build_loggers(cfg, tmp_path / "run", {"seed": 0}, None)[1]
    assert wandb._wandb_init["mode"] == "offline" and wandb._wandb_init["group"] == "exp"
    assert wandb._wandb_init["config"] == {"seed": 0} and wandb._wandb_init["name"] == "run"
    with pytest.raises(UserError) as e:
        types("wandb", "logger.mode=cloud")
    assert str(e.value) == "logger.mode=cloud: unknown (valid: offline, online, disabled)"


def test_a_resumed_run_saved_without_logger_target_gets_its_options_logger(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    from nlpx.run.loggers import JsonlLogger, build_loggers

    saved = OmegaConf.to_container(compose(["logger=csv"]))
    del saved["logger"]["_target_"]
    loggers = build_loggers(OmegaConf.create(saved), tmp_path, {}, None)
    assert [type(lg) for lg in loggers] == [JsonlLogger, CSVLogger]


def test_close_loggers_ends_the_wandb_run_only(tmp_path, monkeypatch):
    import wandb

    from nlpx.run.loggers import build_loggers, close_loggers

    finished = []
    monkeypatch.setattr(wandb, "finish", lambda *a, **k: finished.append(1))
    close_loggers(build_loggers(compose(["logger=csv"]), tmp_path / "a", {}, None))
    assert finished == []
    close_loggers(build_loggers(compose(["logger=wandb"]), tmp_path / "b", {}, None))
    assert finished == [1]


def test_ablation_cells_are_grouped_when_their_logger_takes_a_group():
    from types import SimpleNamespace

    from nlpx.ablate.runner import wandb_grouping

    spec, cell = SimpleNamespace(name="tricks"), SimpleNamespace(arm="trick=[awp]")
    grouped = ["logger.group=tricks", "logger.job_type=trick-awp-"]
    assert wandb_grouping(spec, cell, []) == grouped  # the default logger: W&B
    assert wandb_grouping(spec, cell, ["logger=csv", "logger=wandb"]) == grouped
    assert wandb_grouping(spec, cell, ["logger=csv"]) == []
    assert wandb_grouping(spec, cell, ["logger=wandb", "logger=none"]) == []
    assert wandb_grouping(spec, cell, ["logger=tensorboard"]) == []


# == no choice of a component by its option name ==================================================
def _options(group: str) -> str:
    return "|".join(re.escape(o.rpartition("/")[2]) for o in group_options()[group])


# each pattern: code that picks a component of the trick/logger/data groups (or a task's reader)
# by comparing its option name, with a line of the code this replaced, which it must match
FORBIDDEN = [
    (rf"""name["']?\)*\s*(?:==|!=)\s*["'](?:{_options('logger')}|{_options('data')}|{_options('trick')})["']""",
     'if lc.name == "wandb":'),
    (rf"""name["']?\)*\s*(?:==|!=)\s*["'](?:{_options('logger')}|{_options('data')}|{_options('trick')})["']""",
     'return "triples" if str(data_cfg.get("name")) == "triples" else "sentences"'),
    (rf"""\bget\(\s*["'](?:{_options('trick')})["']\s*\)""", 'asl, msd = self.get("asl"), self.get("multi_dropout")'),
    (r"""__name__\s*(?:==|!=)\s*["']\w*Logger["']""", 'if type(lg).__name__ == "WandbLogger":'),
    (r"""(?:==|!=)\s*["'](?:wandb|csv)["']""", 'if chosen and chosen[-1] != "wandb":'),
    (r"""get\(\s*["']benchmark["']\s*\)\s*(?:==|!=)""", 'if t.get("benchmark") == "multilabel":'),
    (r"""\bsource\s*(?:==|!=)\s*["'](?:synthetic|jsonl)["']""", 'if source == "synthetic":'),
    (r"""\bIMPLIED_CHOICES\b""", 'IMPLIED_CHOICES = {("objective", "classify"): ("data", "glue")}'),
    (r"""\bDATA_FOR_KIND\b""", 'if name not in DATA_FOR_KIND[kind]:'),
]


@pytest.mark.parametrize("pattern, old", FORBIDDEN)
def test_the_patterns_catch_the_code_they_replaced(pattern, old):
    assert re.search(pattern, old), old


def test_no_component_is_chosen_by_its_option_name():
    found = []
    for path in sorted((REPO / "nlpx").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for pattern, _ in FORBIDDEN:
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []
