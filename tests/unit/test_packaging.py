"""The wheel carries the config tree, so an installed (non-editable) nlpx finds conf/."""

import zipfile

from tests.conftest import REPO


def test_wheel_contains_the_config_tree(tmp_path, monkeypatch):
    from hatchling.build import build_wheel

    monkeypatch.chdir(REPO)
    name = build_wheel(str(tmp_path))
    names = zipfile.ZipFile(tmp_path / name).namelist()
    assert "nlpx/conf/config.yaml" in names
    assert {"nlpx/conf/model/bert.yaml", "nlpx/conf/objective/mlm_nsp.yaml",
            "nlpx/conf/trainer/ddp.yaml", "nlpx/conf/logger/wandb.yaml"} <= set(names)
    assert "nlpx/cli.py" in names
    assert {"nlpx/experiments/nsp_vs_nonsp.yaml", "nlpx/experiments/es_nes_gdes.yaml",
            "nlpx/experiments/mask_ratio.yaml", "nlpx/experiments/mask_replace.yaml"} <= set(names)
