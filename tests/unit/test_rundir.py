"""Atomic writes into the run directory: whole files only, usual permissions, no temp files left."""

import os
import stat

import pytest

from nlpx.rundir import atomic_write_bytes, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_whole_file_with_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "sub" / "summary.json"
        atomic_write_json(target, {"a": 1})
        atomic_write_text(target, "second\n")
    finally:
        os.umask(old)
    assert target.read_text() == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "config.yaml"
    atomic_write_text(target, "old\n")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, 123)  # fails inside the write, after the temp file exists
    assert target.read_text() == "old\n" and len(list(tmp_path.iterdir())) == 1
