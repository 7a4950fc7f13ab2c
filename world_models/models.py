"""The world-model families by name: ``build_model("rssm", "small", spec)``.

Each family is a model class and a preset function (``preset(name, **overrides)`` -> its frozen
config dataclass), imported only when built. The CLI (``shiftgrid wm train --model``), the
benchmark and the Dreamer agent all build models here.

Example:
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> model = build_model("rssm", "tiny", ObsSpec(), lr=1e-3)
    >>> type(model).__name__, model.config.lr
    ('RSSM', 0.001)
    >>> build_model("lstm", "tiny", ObsSpec())
    Traceback (most recent call last):
    ...
    ValueError: unknown world model 'lstm'; valid: rssm, transformer, mechanism
"""

from __future__ import annotations

from typing import Any

from shiftgrid.envs.targets import import_target
from shiftgrid.world_models.interface import ObsSpec, WorldModel

#: name -> (``module:ModelClass``, ``module:preset``).
MODELS: dict[str, tuple[str, str]] = {
    "rssm": ("shiftgrid.world_models.rssm:RSSM", "shiftgrid.world_models.config:preset"),
    "transformer": ("shiftgrid.world_models.transformer:TransformerWorldModel",
                    "shiftgrid.world_models.transformer_config:preset"),
    "mechanism": ("shiftgrid.world_models.mechanism:MechanismWorldModel",
                  "shiftgrid.world_models.mechanism_config:preset"),
}


def model_names() -> list[str]:
    """The world-model families, in the order the CLI lists them."""
    return list(MODELS)


def check_model(name: str) -> None:
    """Raise ``ValueError`` naming the valid families if ``name`` is not one."""
    if name not in MODELS:
        raise ValueError(f"unknown world model {name!r}; valid: {', '.join(MODELS)}")


def model_config(name: str, preset: str, **overrides: Any) -> Any:
    """The config of family ``name`` at ``preset``, fields replaced by ``overrides`` (``ValueError`` if unknown)."""
    check_model(name)
    return import_target(MODELS[name][1])(preset, **overrides)


def build_model(name: str, preset: str, spec: ObsSpec, **overrides: Any) -> WorldModel:
    """A fresh model of family ``name`` sized by ``preset`` (with ``overrides``) for observations ``spec``."""
    config = model_config(name, preset, **overrides)
    model: WorldModel = import_target(MODELS[name][0])(config, spec)
    model.family, model.preset = name, preset
    return model
