"""Where geri keeps its files.

The operating system's conventions (via platformdirs) by default; `GERI_HOME` moves every one of
them under a single directory, which is how tests, containers and portable installs isolate
geri from the rest of the machine. Paths are computed from an environment mapping passed in,
so nothing here reads global state behind the caller's back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP = "geri"


@dataclass(frozen=True, slots=True)
class Paths:
    """The directories geri uses. Nothing is created until it is needed."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        home = env.get("GERI_HOME")
        if home:
            root = Path(home).expanduser()
            return cls(root / "config", root / "data", root / "cache", root / "logs")
        import platformdirs

        return cls(
            Path(platformdirs.user_config_dir(APP)),
            Path(platformdirs.user_data_dir(APP)),
            Path(platformdirs.user_cache_dir(APP)),
            Path(platformdirs.user_log_dir(APP)),
        )

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def database(self) -> Path:
        return self.data_dir / "geri.db"

    @property
    def daemon_state(self) -> Path:
        """The running daemon's address and pid; it exists while the daemon serves."""
        return self.data_dir / "daemon.json"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"
