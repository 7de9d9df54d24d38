"""Parsed config files kept between compositions: the same configs as Hydra's own file source,
a fresh copy each time, and an edited file read again."""

import os

from hydra._internal.core_plugins.file_config_source import FileConfigSource
from hydra._internal.sources_registry import SourcesRegistry
from omegaconf import OmegaConf

from nlpx.config import compose
from nlpx.config_files import _cached_source


def test_compositions_equal_hydras_own_file_source():
    overrides = [["model=deberta", "objective=rtd"], ["model=albert", "objective=sop", "trick=[awp]"], []]
    cached = compose([]) and SourcesRegistry.instance().types["file"]
    hydras = cached.__mro__[1]  # (Hydra's plugin discovery loads its own copy of the module)
    assert hasattr(cached, "parsed") and hydras.__name__ == cached.__name__ == FileConfigSource.__name__
    try:
        SourcesRegistry.instance().types["file"] = hydras
        expected = [OmegaConf.to_container(compose(o)) for o in overrides]
    finally:
        SourcesRegistry.instance().types["file"] = cached
    assert [OmegaConf.to_container(compose(o)) for o in overrides] == expected


def test_each_load_is_a_copy_and_an_edited_file_is_read_again(tmp_path):
    source = _cached_source()("test", str(tmp_path))
    f = tmp_path / "a.yaml"
    f.write_text("# @package _global_\nx: 1\nnested: {y: [1, 2]}\n")
    first = source.load_config("a")
    assert first.header["package"] == "_global_" and OmegaConf.to_container(first.config) == {"x": 1, "nested": {"y": [1, 2]}}
    first.config.nested.y.append(3)  # Hydra merges into what it loads
    assert OmegaConf.to_container(source.load_config("a").config) == {"x": 1, "nested": {"y": [1, 2]}}
    f.write_text("x: 22\n")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert OmegaConf.to_container(source.load_config("a.yaml").config) == {"x": 22}
