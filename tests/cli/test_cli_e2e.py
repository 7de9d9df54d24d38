"""The CLI end to end: help, errors, a full run directory, export, resume, multirun. In subprocesses
where the process is what is tested (the console script's exit code, a kill, DDP, Hydra's
launcher); the other errors in process."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import NLPX, REPO, SMALL, cli, cli_env


def nlpx(*args, cache_dir, timeout=300):
    return subprocess.run([*NLPX, *args], cwd=REPO, env=cli_env(cache_dir), capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_groups_and_options(cache_dir):
    for args in (["--help"], ["train", "--help"]):
        out = nlpx(*args, cache_dir=cache_dir)
        assert out.returncode == 0
        text = " ".join(out.stdout.split())  # the help wraps long option lists
        assert "objective: angle, angle_latest, classify, clm, esimcse, mlm, mlm_nsp, plm, qa, rtd, simbert, simcse, sop, span, tag, unilm" in text
        assert "model: albert, bert, bigbird, deberta, electra, gau, gpt2, longformer, roberta, roformer, xlnet" in text
        assert "task: clue/afqmc, clue/cluewsc2020" in text and "glue/cola, glue/mnli" in text
        if args == ["--help"]:
            assert "generate Generate text with a trained model." in text

def test_eval_glue_help_names_the_outputs_and_resume(cache_dir):
    out = nlpx("eval", "glue", "--help", cache_dir=cache_dir)
    assert out.returncode == 0
    assert "submission.zip" in out.stdout and "resume=runs/glue/<run_id>" in out.stdout


def test_unknown_option_exits_2_naming_valid_options(cache_dir):
    out = nlpx("train", "objective=nspx", cache_dir=cache_dir)
    assert out.returncode == 2
    assert out.stderr.strip() == ("nlpx: error: objective=nspx: unknown option for group 'objective' "
                                  "(valid: angle, angle_latest, classify, clm, esimcse, mlm, mlm_nsp, plm, qa, rtd, simbert, simcse, sop, span, tag, unilm)")


@pytest.mark.parametrize("args,fragment", [
    (["model.sise=mini"], "model.sise: unknown config key"),
    (["data=text", "data.paths=[/no/such/dir]"], "data.paths: '/no/such/dir' does not exist"),
    (["resume=/no/such/run"], "resume=/no/such/run: not an nlpx run directory"),
])
def test_user_errors_are_one_line_exit_2(args, fragment, cache_dir, tmp_path):
    out = cli("train", *SMALL, f"runs_dir={tmp_path}", *args, cache_dir=cache_dir)
    assert out.returncode == 2, out.stderr
    assert fragment in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.rglob("*.yaml")) and not list(tmp_path.rglob("summary.json"))


def test_config_prints_yaml_and_parameter_count(cache_dir):
    out = cli("config", "model.size=mini", cache_dir=cache_dir)
    assert out.returncode == 0
    assert "num_hidden_layers: 4" in out.stdout and "# parameters: " in out.stdout


def train_args(tmp_path, steps, *extra):
    return ["train", *SMALL, f"runs_dir={tmp_path}", f"budget.max_steps={steps}",
            "trainer.val_check_interval=10", "trainer.checkpoint_every_n_steps=5",
            "trainer.limit_val_batches=4", *extra]


def only_run(root: Path) -> Path:
    (run,) = [p.parent for p in root.rglob("config.yaml")]
    return run


def test_train_writes_a_complete_run_and_the_export_reloads(cache_dir, tmp_path):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

    out = nlpx(*train_args(tmp_path, 10), cache_dir=cache_dir)
    assert out.returncode == 0, out.stderr
    run = only_run(tmp_path)
    assert {"config.yaml", "overrides.yaml", "metrics.jsonl", "summary.json"} <= {p.name for p in run.iterdir()}
    assert {"last.ckpt", "best.ckpt"} <= {p.name for p in (run / "checkpoints").iterdir()}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 10 and "val/mlm_loss" in summary["final"]
    assert "step 10/10" in out.stdout  # plain progress lines when not a terminal

    tok = AutoTokenizer.from_pretrained(run / "hf")
    batch = tok(["some words of the synthetic language .", "a b c"], return_tensors="pt", padding=True)
    exported = AutoModelForMaskedLM.from_pretrained(run / "hf").eval()
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    inside = BertForMaskedLM(BertConfig.from_pretrained(run / "hf")).eval()
    inside.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    with torch.no_grad():
        torch.testing.assert_close(exported(**batch).logits, inside(**batch).logits, rtol=0, atol=0)
    assert AutoModel.from_pretrained(run / "hf").config.hidden_size == 128


def test_interrupted_and_resumed_equals_uninterrupted(cache_dir, tmp_path):
    steps = 40
    full = cli(*train_args(tmp_path / "a", steps), cache_dir=cache_dir)  # in process: only the kill needs one
    assert full.returncode == 0, full.stderr
    reference = json.loads((only_run(tmp_path / "a") / "summary.json").read_text())

    proc = subprocess.Popen([*NLPX, *train_args(tmp_path / "b", steps)], cwd=REPO,
                            env=cli_env(cache_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list((tmp_path / "b").rglob("last.ckpt")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = only_run(tmp_path / "b")
    killed_at = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert 0 < killed_at < steps and not (run / "summary.json").exists()

    resumed = cli("train", f"resume={run}", cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == steps
    for key in ("val/mlm_loss", "val/mlm_acc"):
        a, b = reference["final"][key], summary["final"][key]
        assert abs(a - b) <= 1e-4 * abs(a), (key, a, b, killed_at)
    steps_logged = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == sorted(steps_logged)  # rows after the checkpoint were dropped, not doubled


def test_multirun_runs_every_combination(cache_dir, tmp_path):
    out = nlpx("train", "-m", "objective=mlm,mlm_nsp", "seed=1,2", *SMALL, f"runs_dir={tmp_path}",
               "budget.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
               cache_dir=cache_dir, timeout=600)
    assert out.returncode == 0, out.stderr
    summaries = [json.loads(p.read_text()) for p in tmp_path.rglob("summary.json")]
    assert len(summaries) == 4
    configs = [json.loads(json.dumps(s)) for s in summaries]
    assert sorted(("val/nsp_loss" in c["final"], c["seed"]) for c in configs) == \
        [(False, 1), (False, 2), (True, 1), (True, 2)]


def test_multirun_typo_fails_before_any_job(cache_dir, tmp_path):
    out = cli("train", "-m", "objective=mlm,mlmx", f"runs_dir={tmp_path}", cache_dir=cache_dir)
    assert out.returncode == 2 and "objective=mlmx: unknown option" in out.stderr
    assert not list(tmp_path.rglob("config.yaml"))


def test_empty_corpus_exits_2_and_writes_nothing(cache_dir, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "blank.txt").write_text("\n \n\n")
    out = cli("train", *SMALL, "data=text", f"data.paths=[{corpus}]", f"runs_dir={tmp_path / 'runs'}",
               cache_dir=cache_dir)
    assert out.returncode == 2
    assert "data.paths: no text found in 1 file(s)" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()
