"""Prefect flows: thin wrappers over the core's steps.

Importing this package applies the project's Prefect settings (``prefect.toml`` at the repository
root) as environment defaults before Prefect is imported, so they hold whatever the working
directory: Prefect itself reads ``prefect.toml`` only from the current directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_PREFECT_TOML = Path(__file__).resolve().parent.parent / "prefect.toml"


def prefect_env(table: Mapping[str, Any], prefix: str = "PREFECT") -> dict[str, str]:
    """``{"server": {"ephemeral": {"startup_timeout_seconds": 180}}}`` as Prefect's environment
    names: ``{"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}``."""
    env: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}_{key.upper()}"
        if isinstance(value, Mapping):
            env.update(prefect_env(value, name))
        else:
            env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def apply_project_settings(path: Path = PROJECT_PREFECT_TOML) -> None:
    """Set each of the project's Prefect settings that the environment does not set already."""
    if not path.is_file():  # an installed wheel without the repository: Prefect's own defaults
        return
    for name, value in prefect_env(tomllib.loads(path.read_text(encoding="utf-8"))).items():
        os.environ.setdefault(name, value)


apply_project_settings()
