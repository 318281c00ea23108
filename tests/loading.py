"""Loading a test's own module from a file it wrote (code under a scope of its own)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


def load_module(path: Path, name: str, register: bool = False,
                **preset: Any) -> types.ModuleType:
    """Import ``path`` as module ``name``; ``preset`` names are set before it runs, and with
    ``register`` it is put in ``sys.modules`` (the caller removes it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    for key, value in preset.items():
        setattr(module, key, value)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
