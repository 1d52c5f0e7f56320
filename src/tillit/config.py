"""Typed configuration: YAML in `configs/`, loaded into frozen pydantic models.

Every section forbids unknown keys, so a typo is an error naming the file and
the key instead of a silently ignored setting.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tillit.capacity import ReviewConfig
from tillit.errors import ConfigError
from tillit.features import FeatureConfig
from tillit.pseudonymise import PseudonymiseConfig
from tillit.score import ScoringConfig
from tillit.simulate import SimulationConfig
from tillit.strict import StrictModel
from tillit.train import TrainingConfig
from tillit.validate import ValidationConfig

DEFAULT_CONFIG_PATH = Path("configs/default.yaml")


class TillitConfig(StrictModel):
    """The whole configuration of a run, one section per pipeline stage."""

    validation: ValidationConfig = ValidationConfig()
    simulation: SimulationConfig = SimulationConfig()
    features: FeatureConfig = FeatureConfig()
    review: ReviewConfig = ReviewConfig()
    training: TrainingConfig = TrainingConfig()
    scoring: ScoringConfig = ScoringConfig()
    pseudonymise: PseudonymiseConfig = PseudonymiseConfig()

    def resolved(self) -> dict[str, Any]:
        """Every setting, defaults included: what a run logs."""
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """A short stable hash of the resolved config, to tell runs apart."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _error_location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def load_config(path: Path | str | None = None) -> TillitConfig:
    """Load a YAML config; with no path, the built-in defaults.

    Raises:
        ConfigError: a one-line message naming the file and the offending key.
    """
    if path is None:
        return TillitConfig()
    path = Path(path)
    try:
        payload = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    try:
        return TillitConfig.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _error_location(first)
        if first["type"] == "extra_forbidden":
            message = f"{path}: unknown key '{key}'"
        else:
            message = f"{path}: bad value for '{key}': {first['msg']}"
        more = len(exc.errors()) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(message) from None
