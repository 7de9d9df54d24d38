"""The README's error contract, case by case: every bad input to `nlpx train`, `eval glue`, `eval
sts` and `ablate` is exactly one line on stderr naming what is wrong, exit code 2, and nothing
new under runs_dir. In process (tests.conftest.cli), one row per case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import SMALL, cli
from tests.glue_fixture import write_glue


class Fx:
    """What a row builds its command line from: a tmp folder, the session's tiny pretrained run
    (read-only: rows copy it before they damage it), the fixture GLUE folder and a runs_dir."""

    def __init__(self, tmp: Path, pretrained: Path, glue: Path, cache: Path):
        self.tmp, self.pretrained, self.glue, self.cache = tmp, pretrained, glue, cache
        self.runs = tmp / "runs"

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def train(self, *extra: str) -> list[str]:
        return ["train", *SMALL, f"data.cache_dir={self.cache}", f"runs_dir={self.runs}", "budget.max_steps=2",
                "trainer.val_check_interval=2", "trainer.limit_val_batches=1", *extra]

    def text(self, *extra: str) -> list[str]:
        return self.train("data=text", "data.vocab_size=600", *extra)

    def glue_eval(self, *extra: str, glue: Path | None = None) -> list[str]:
        return ["eval", "glue", f"model.pretrained={self.pretrained}", f"data.glue_dir={glue or self.glue}",
                "eval.tasks=[sst2]", "eval.seeds=[0]", "budget.max_epochs=1", "logger=none",
                f"runs_dir={self.runs}", *extra]

    def sts(self, *extra: str) -> list[str]:
        return ["eval", "sts", f"model.pretrained={self.pretrained}", f"data.glue_dir={self.glue}", "logger=none",
                f"runs_dir={self.runs}", *extra]

    def classify(self, *extra: str) -> list[str]:
        return ["train", "objective=classify", f"model.pretrained={self.pretrained}", f"data.glue_dir={self.glue}",
                "task=sst2", "budget.max_steps=2", "logger=none", f"runs_dir={self.runs}", *extra]

    def damaged_checkpoint(self) -> Path:
        """A copy of the pretrained run with its weights cut in half."""
        copy = self.tmp / "damaged"
        shutil.copytree(self.pretrained, copy)
        weights = copy / "hf" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return copy

    def glue_with(self, task_dir: str, split: str, text: str) -> Path:
        """The fixture GLUE folder with one file replaced."""
        root = self.tmp / "glue"
        write_glue(root, tasks=("sst2", "stsb", "mrpc"))
        (root / task_dir / f"{split}.tsv").write_text(text)
        return root

    def corpus(self, name: str, text: str | bytes) -> list[str]:
        """A text corpus of one file: the overrides that train on it."""
        return self.text(f"data.paths=[{self.file('corpus/' + name, text)}]")

    def folder(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir()
        return path

    def big_tokenizer(self) -> Path:
        """A WordPiece tokenizer with more tokens than the pretrained run's embedding table."""
        import random

        from nlpx.data.tokenizer import train_tokenizer

        rng = random.Random(0)
        words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                 for _ in range(3000)]
        tok = train_tokenizer([" ".join(words[i:i + 12]) for i in range(0, 3000, 12)] * 3, kind="wordpiece",
                              vocab_size=2000, lowercase=True)
        assert len(tok) > 1000
        tok.save_pretrained(str(self.tmp / "big_tok"))
        return self.tmp / "big_tok"

    def spec(self, text: str) -> Path:
        return self.file("spec.yaml", text)

    def resumable(self) -> Path:
        """A run directory of this test's own (a copy of the pretrained run) under runs_dir."""
        run = self.runs / "default" / "r"
        shutil.copytree(self.pretrained, run)
        return run


SPEC = """description: a test
stages:
  - {name: pretrain, command: train}
base: [model=bert]
arms:
  a: [objective=mlm]
  b: [objective=mlm_nsp]
baseline: a
seeds: [0]
metrics: [val/mlm_loss]
sizes:
  smoke:
    pretrain: [logger=none]
  full:
    pretrain: [logger=none]
"""

STS_BAD_JSON = "{bad\n"
STS_BAD_SCORE = "sentence1\tsentence2\tscore\na\tb\thigh\n"

CASES = {
    # ---- nlpx train: the command line
    "unknown option": (lambda f: ["train", "--foo"], "--foo: no such option"),
    "unknown key": (lambda f: f.train("model.sise=mini"), "model.sise: unknown config key"),
    "unknown group option": (lambda f: f.train("model=llama"), "model=llama: unknown option for group 'model' (valid: albert"),
    "renamed key": (lambda f: f.train("trainer.max_steps=5"), "trainer.max_steps: this setting is now budget.max_steps"),
    "data not a corpus": (lambda f: ["train", "data=clue", "logger=none", f"runs_dir={f.runs}"],
                          "data=clue: not a corpus of documents; objective=mlm pretrains on data=synthetic or data=text"),
    "max_steps=0": (lambda f: f.train("budget.max_steps=0"), "budget.max_steps=0: must be an integer >= 1"),
    "max_steps=abc": (lambda f: f.train("budget.max_steps=abc"), "budget.max_steps=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    "max_steps=-5": (lambda f: f.train("budget.max_steps=-5"), "budget.max_steps=-5: must be an integer >= 1"),
    "max_time=abc": (lambda f: f.train("budget.max_time=abc"), "budget.max_time=abc: give seconds or DD:HH:MM:SS"),
    "seed=abc": (lambda f: f.train("seed=abc"), "seed=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    "lr<0": (lambda f: f.train("optim.lr=-0.001"), "optim.lr=-0.001: must be a number > 0"),
    "lr=nan": (lambda f: f.train("optim.lr=nan"), "optim.lr=nan: must be a number > 0"),
    "lr=0": (lambda f: f.train("optim.lr=0"), "optim.lr=0: nothing would train"),
    "batch_size=0": (lambda f: f.train("data.batch_size=0"), "data.batch_size=0: must be an integer >= 1"),
    "batch_size=-1": (lambda f: f.train("data.batch_size=-1"), "data.batch_size=-1: must be an integer >= 1"),
    "seq_len over positions": (lambda f: f.train("data.seq_len=600"),
                               "data.seq_len=600: longer than the 512 positions of the model"),
    "heads do not divide": (lambda f: f.train("model.num_attention_heads=3"),
                            "model.num_attention_heads=3: must divide model.hidden_size=128"),
    "precision": (lambda f: f.train("trainer.precision=bogus"), "trainer.precision=bogus: unknown (valid: "),
    "gpu without one": (lambda f: f.train("trainer.accelerator=gpu"), "trainer.accelerator=gpu: this machine has no CUDA GPU"),
    "logger.mode": (lambda f: f.train("logger=wandb", "logger.mode=bogus"), "logger.mode=bogus: unknown (valid: offline, online, disabled)"),
    "model.size": (lambda f: f.train("model.size=huge"), "model.size=huge: unknown size (valid: tiny, mini, small, base)"),
    "experiment=../x": (lambda f: f.train("experiment=../x"), "experiment=../x: must be one folder name"),
    "run_id with ..": (lambda f: f.train("run_id=a/../../b"), "run_id=a/../../b: must be one folder name"),
    "run_id of a run": (lambda f: f.train(f"run_id={f.resumable().name}"), "already exists (a run is never overwritten)"),
    "masking ratio": (lambda f: f.train("objective.masking.ratio=1.5"), "objective.masking: ratio must be in (0, 1), got 1.5"),
    "80/10/10 sum": (lambda f: f.train("objective.masking.mask=0.5"), "objective.masking: mask + random + keep must sum to 1"),
    "val_fraction": (lambda f: f.train("data.val_fraction=1.5"), "data.val_fraction=1.5: must be in (0, 1)"),
    "tokenize_workers": (lambda f: f.train("data.tokenize_workers=0"),
                         "data.tokenize_workers=0: must be an integer >= 1 (null: one per CPU)"),
    "gpt2 masked": (lambda f: f.train("model=gpt2", "objective=mlm"),
                    "objective=mlm needs a bidirectional encoder; model=gpt2 is decoder-only"),
    "task in pretraining": (lambda f: f.train("task=sst2"), "task=sst2: a task is read by fine-tuning"),
    "unknown trick": (lambda f: f.train("trick=[foo]"), "trick=foo: unknown option for group 'trick'"),
    "trick in pretraining": (lambda f: f.train("trick=[awp]"), "trick=awp"),
    # ---- nlpx train: data
    "missing data path": (lambda f: f.text("data.paths=[/no/such/dir]"), "data.paths: '/no/such/dir' does not exist"),
    "empty file": (lambda f: f.corpus("blank.txt", "\n \n\n"), "no text found in 1 file(s)"),
    "empty folder": (lambda f: f.text(f"data.paths=[{f.folder('empty')}]"), "empty' contains no corpus files"),
    "malformed jsonl": (lambda f: f.corpus("a.jsonl", '{"text": "a b c."}\n{oops\n'), "a.jsonl:2"),
    "jsonl without text": (lambda f: f.corpus("b.jsonl", '{"body": "a b c."}\n'),
                           "b.jsonl:1: no field 'text' (keys present: 'body'); set data.text_field"),
    "damaged gz corpus": (lambda f: f.corpus("c.jsonl.gz", b"\x1f\x8b\x08\x00garbage"), "c.jsonl.gz: cannot be read"),
    "one 2 MB line": (lambda f: f.corpus("long.txt", "word " * 400_000), "the corpus has one document"),
    "not a tokenizer": (lambda f: f.train(f"data.tokenizer={f.folder('tok')}"), "tok: cannot load a tokenizer there"),
    "tokenizer too big for the checkpoint": (lambda f: f.train(f"model.pretrained={f.pretrained}",
                                                               f"data.tokenizer={f.big_tokenizer()}"),
                                             "data.tokenizer: its vocabulary has"),
    # ---- nlpx train: checkpoints and resume
    "not a model folder": (lambda f: f.train(f"model.pretrained={f.tmp}"), "no config.json there or in its hf/ folder"),
    "damaged safetensors (train)": (lambda f: f.train(f"model.pretrained={f.damaged_checkpoint()}"),
                                    "model.safetensors cannot be read"),
    "resume a missing dir": (lambda f: ["train", f"resume={f.tmp / 'nope'}"], "not an nlpx run directory"),
    "resume a non-run dir": (lambda f: ["train", f"resume={f.tmp}"], "not an nlpx run directory (no config.yaml)"),
    "resume with a group change": (lambda f: ["train", f"resume={f.resumable()}", "objective=mlm_nsp"],
                                   "only key=value overrides"),
    "resume a damaged checkpoint": (lambda f: ["train", f"resume={_truncate_ckpt(f.resumable())}"], "last.ckpt cannot be read"),
    "package without a model": (lambda f: f.train("model.pretrained=package:json"), "no model (config.json)"),
    "package not installed": (lambda f: f.train("model.pretrained=package:no_such_pkg"), "no installed Python package"),
    # ---- fine-tuning
    "classify without a checkpoint": (lambda f: ["train", "objective=classify", f"data.glue_dir={f.glue}", "task=sst2",
                                                 "logger=none", f"runs_dir={f.runs}"], "give model.pretrained=PATH"),
    "bucket_window=0": (lambda f: f.classify("task.bucket_window=0"), "task.bucket_window=0: must be an integer >= 1"),
    "ASL on STS-B": (lambda f: f.classify("task=stsb", "trick=[asl]"),
                     "trick=asl: cannot apply to this run: a regression task"),
    # ---- nlpx eval glue
    "eval.seeds=abc": (lambda f: f.glue_eval("eval.seeds=abc"), "eval.seeds=abc: give a list of integers"),
    "unknown task": (lambda f: f.glue_eval("eval.tasks=[foo]"), "unknown GLUE task 'foo'"),
    "missing glue_dir": (lambda f: f.glue_eval("data.glue_dir=/no/such"), "data.glue_dir=/no/such: no such folder"),
    "glue lr=0": (lambda f: f.glue_eval("optim.lr=0"), "optim.lr=0: nothing would train"),
    "glue missing column": (lambda f: f.glue_eval(glue=f.glue_with("SST-2", "dev", "text\tlabel\nabc\t1\n")),
                            "SST-2/dev.tsv:1: header has no column 'sentence'"),
    "glue unknown label": (lambda f: f.glue_eval(glue=f.glue_with("SST-2", "dev", "sentence\tlabel\nabc\t7\n")),
                           "SST-2/dev.tsv:2: unknown label '7' in column 'label' (valid: 0, 1)"),
    "glue empty dev": (lambda f: f.glue_eval(glue=f.glue_with("SST-2", "dev", "")), "SST-2/dev.tsv: empty file"),
    "glue header-only dev": (lambda f: f.glue_eval(glue=f.glue_with("SST-2", "dev", "sentence\tlabel\n")),
                             "GLUE sst2 dev has no rows"),
    "damaged safetensors (eval glue)": (lambda f: f.glue_eval(f"model.pretrained={f.damaged_checkpoint()}"),
                                        "model.safetensors cannot be read"),
    "glue resume a non-run": (lambda f: ["eval", "glue", f"resume={f.tmp}"], "not an nlpx eval glue run directory"),
    # ---- nlpx eval sts
    "sts unknown pooling": (lambda f: f.sts("model.pooling=avg"), "model.pooling=avg: unknown pooling"),
    "sts malformed jsonl": (lambda f: f.sts(f"eval.files=[{f.file('s.jsonl', STS_BAD_JSON)}]"), "s.jsonl:1"),
    "sts non-numeric score": (lambda f: f.sts(f"eval.files=[{f.file('s.tsv', STS_BAD_SCORE)}]"), "s.tsv:2"),
    # ---- nlpx ablate
    "unknown experiment": (lambda f: ["ablate", "nosuch"], "ablate nosuch: no such experiment"),
    "unknown size": (lambda f: ["ablate", "nsp_vs_nonsp", "--size", "huge"], "--size huge: not a size of nsp_vs_nonsp"),
    "malformed spec": (lambda f: ["ablate", str(f.spec("arms: [a\n"))], "spec.yaml: not a valid YAML spec"),
    "unknown spec key": (lambda f: ["ablate", str(f.spec(SPEC + "colour: red\n"))], "spec.yaml: unknown key 'colour'"),
    "unknown key in a stage": (lambda f: ["ablate", str(f.spec(SPEC.replace("command: train}", "command: train, colour: red}")))],
                               "spec.yaml: stages[0]: unknown key 'colour' (valid: name, command, overrides)"),
    "unknown stage in a size": (lambda f: ["ablate", str(f.spec(SPEC.replace("  full:\n    pretrain:", "  full:\n    finetune:")))],
                                "sizes.full: 'finetune' is not a stage (stages: pretrain)"),
    "unknown stage prefix": (lambda f: ["ablate", str(f.spec(SPEC)), "--size", "smoke", "finetune:optim.lr=1"],
                             "'finetune' is not a stage"),
    "bad value in one cell": (lambda f: ["ablate", str(f.spec(SPEC)), "--size", "smoke", "optim.lr=0", f"runs_dir={f.runs}"],
                              "optim.lr=0: nothing would train"),
    # ---- multirun: every job checked before the first
    "multirun bad value": (lambda f: [*f.train("objective.masking.ratio=0.15,1.5")[:1], "-m",
                                      *f.train("objective.masking.ratio=0.15,1.5")[1:]], "ratio must be in (0, 1), got 1.5"),
}


def _truncate_ckpt(run: Path) -> Path:
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    return run


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, pretrained_run, glue_dir, cache_dir):
    build, fragment = CASES[case]
    fx = Fx(tmp_path, pretrained_run, glue_dir, cache_dir)
    args = build(fx)
    before = _tree(fx.runs)
    out = cli(*args, cache_dir=cache_dir)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr[-3000:]
    assert len(lines) == 1, out.stderr[-3000:]
    assert lines[0].startswith("nlpx: error: ") and fragment in lines[0], lines[0]
    assert _tree(fx.runs) == before  # nothing new, nothing changed


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")} if root.exists() else {}


def test_the_suite_counts_its_cases():
    """The closing note of issue 17 quotes this count."""
    assert len(CASES) >= 60, len(CASES)


def test_corrupt_model_message_names_the_file(tmp_path, pretrained_run, glue_dir, cache_dir):
    fx = Fx(tmp_path, pretrained_run, glue_dir, cache_dir)
    damaged = fx.damaged_checkpoint()
    out = cli(*fx.glue_eval(f"model.pretrained={damaged}"), cache_dir=cache_dir)
    assert f"{damaged / 'hf' / 'model.safetensors'} cannot be read" in out.stderr
    assert not fx.runs.exists()


def test_summary_of_an_existing_run_is_untouched(tmp_path, pretrained_run, glue_dir, cache_dir):
    """run_id= naming a finished run: the run's files stay byte for byte."""
    fx = Fx(tmp_path, pretrained_run, glue_dir, cache_dir)
    run = fx.resumable()
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    out = cli(*fx.train(f"run_id={run.name}"), cache_dir=cache_dir)
    assert out.returncode == 2
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files
    assert json.loads((run / "summary.json").read_text())["steps"] == 2
