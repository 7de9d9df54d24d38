"""Parsed config files kept between Hydra compositions in one process.

Hydra reads and parses every YAML file of the config tree again for each `compose` (its YAML
parser is pure Python: about 30% of a composition). nlpx composes many times in one process:
`nlpx ablate` composes every stage of every cell to plan it (over a hundred for the shipped
experiments), `eval glue` once per task. Hydra has no option to keep parsed files, so the
"file://" scheme of its config-source registry is given a subclass of its own file source that
keeps each file's parsed config under its path, size and modification time (an edited file is
read again) and hands every composition a deep copy (Hydra merges into the configs it loads).
"""

from __future__ import annotations

import copy
import os

_installed = False


def keep_parsed_files() -> None:
    global _installed
    if _installed:
        return
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins

    Plugins.instance()  # its discovery registers Hydra's own sources first
    SourcesRegistry.instance().types["file"] = _cached_source()
    _installed = True


def _cached_source():
    from hydra._internal.core_plugins.file_config_source import FileConfigSource
    from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource

    class CachedFileConfigSource(FileConfigSource):
        parsed: dict[tuple[str, int, int], tuple[dict, object]] = {}  # (path, size, mtime) -> (header, config)

        def load_config(self, config_path: str) -> ConfigResult:
            import yaml
            from omegaconf import OmegaConf
            from omegaconf._utils import get_yaml_loader

            full_path = os.path.realpath(os.path.join(self.path, self._normalize_file_name(config_path)))
            try:
                st = os.stat(full_path)
            except FileNotFoundError:
                raise ConfigLoadError(f"Config not found : {full_path}") from None
            key = (full_path, st.st_size, st.st_mtime_ns)
            if key not in self.parsed:
                with open(full_path, encoding="utf-8") as f:
                    text = f.read()
                # what OmegaConf.load does: its YAML loader, then create
                self.parsed[key] = (ConfigSource._get_header_dict(text[:512]),
                                    OmegaConf.create(yaml.load(text, Loader=get_yaml_loader())))
            header, parsed = self.parsed[key]
            # a deep copy of a config is several times cheaper than creating it again
            return ConfigResult(config=copy.deepcopy(parsed), path=f"{self.scheme()}://{self.path}",
                                provider=self.provider, header=dict(header))

    # Hydra's registry keeps a registered source when a class of the same name registers again,
    # as happens in a launcher's worker (joblib): Hydra restores its state there, this class
    # included, and its plugin discovery then registers its own file source
    CachedFileConfigSource.__name__ = CachedFileConfigSource.__qualname__ = FileConfigSource.__name__
    return CachedFileConfigSource
