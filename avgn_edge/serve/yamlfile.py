"""serve's YAML file read strictly: a missing or unreadable file, text that is not UTF-8, invalid YAML
and duplicate keys (YAML itself keeps the last one silently; we refuse) are one ConfigError line
naming the file (and line)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}",
                                  hint="each camera (and each key) may appear once")
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml, Loader


def read_yaml(path: str | os.PathLike):
    """The file's YAML data; ConfigError (one line naming the file and line) for anything unreadable."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found")
    yaml, Loader = _yaml_loader()
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=Loader)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}", hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return data
