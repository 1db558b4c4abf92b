"""`termllm doctor`: what llama.cpp can use on this machine, and where termllm keeps things."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from termllm import __version__
from termllm.config import Config
from termllm.hub.cache import cache_size
from termllm.services.models import ModelService

if TYPE_CHECKING:
    from termllm.engine.hardware import HardwareReport


@dataclass(frozen=True)
class DoctorReport:
    termllm_version: str
    python_version: str
    platform: str
    hardware: HardwareReport
    paths: dict[str, str]
    hub_endpoint: str
    offline: bool
    hub_cache_bytes: int
    model_count: int


class DoctorService:
    def __init__(self, config: Config, models: ModelService) -> None:
        self._config = config
        self._models = models

    def report(self) -> DoctorReport:
        # The engine imports llama_cpp; only doctor and inference pay for that import.
        from termllm.engine.hardware import probe_hardware

        paths = self._config.paths
        return DoctorReport(
            termllm_version=__version__,
            python_version=platform.python_version(),
            platform=f"{platform.system()} {platform.release()} ({platform.machine()})",
            hardware=probe_hardware(paths.native_log_file),
            paths={
                "config file": str(paths.config_file),
                "data": str(paths.data_dir),
                "state": str(paths.state_dir),
                "logs": str(paths.log_dir),
                "cache": str(paths.cache_dir),
                "hub cache": str(paths.hub_cache),
                "python": sys.executable,
            },
            hub_endpoint=self._config.hub_endpoint,
            offline=self._config.settings.hub.offline,
            hub_cache_bytes=cache_size(paths.hub_cache),
            model_count=len(self._models.list_models()),
        )
