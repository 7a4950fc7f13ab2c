"""RSSM configuration and its size presets.

Example:
    >>> preset("tiny").deter, preset("small").stoch, preset("small").classes
    (64, 8, 8)
    >>> preset("huge")
    Traceback (most recent call last):
    ...
    ValueError: unknown world-model preset 'huge'; valid: tiny, small, medium, large
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, TypeVar


@dataclass(frozen=True)
class LatentModelConfig:
    """What every world-model family shares: encoder and head sizes, latents, loss weights, optimiser, device flags."""

    cell_embed: int = 8
    """Embedding width of each cell code (type, colour and state each get one)."""
    token_embed: int = 16
    """Embedding width of mission tokens (mean over the non-padding tokens)."""
    embed: int = 128
    """Encoder output width."""
    hidden: int = 200
    """Units of every MLP layer (encoder, prior, posterior, heads)."""
    layers: int = 1
    """Hidden layers per head MLP."""
    stoch: int = 8
    """Number of categorical latents."""
    classes: int = 8
    """Classes per categorical latent."""
    unimix: float = 0.01
    """Share of the uniform distribution mixed into every latent (and so no class has probability 0)."""
    free_nats: float = 1.0
    """KL free bits: each KL term is clipped below at this many nats per step."""
    dyn_scale: float = 1.0
    """Weight of the dynamics KL (trains the prior)."""
    rep_scale: float = 0.1
    """Weight of the representation KL (trains the posterior)."""
    reward_bins: int = 41
    """Two-hot bins of the reward head, evenly spaced in symlog space over [-20, 20]."""
    lr: float = 3e-4
    """Adam learning rate of the world model's own optimiser."""
    eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 1000.0
    """Global gradient-norm clip."""
    bf16: bool = False
    """bf16 autocast for the networks (for CUDA; on the CPU only when asked)."""
    compile: bool = False
    """``torch.compile`` the recurrent / imagination step (off unless asked)."""
    compile_backend: str = "inductor"
    """Backend for ``compile`` (``eager`` checks tracing without a compiler)."""


@dataclass(frozen=True)
class RSSMConfig(LatentModelConfig):
    """Sizes and loss settings of the RSSM (DreamerV3's recipe, sized for grid worlds)."""

    deter: int = 200
    """GRU (deterministic state) width."""


PRESETS: dict[str, RSSMConfig] = {
    "tiny": RSSMConfig(cell_embed=4, token_embed=8, embed=64, hidden=64, deter=64, stoch=4, classes=8, lr=1e-3),
    "small": RSSMConfig(),
    "medium": RSSMConfig(cell_embed=16, token_embed=32, embed=256, hidden=512, layers=2, deter=512, stoch=16,
                         classes=16, lr=1e-4),
    "large": RSSMConfig(cell_embed=32, token_embed=64, embed=512, hidden=1024, layers=2, deter=1024, stoch=32,
                        classes=32, lr=1e-4),
}


def preset(name: str, **overrides: object) -> RSSMConfig:
    """The named preset, with fields replaced by ``overrides``."""
    return pick_preset(PRESETS, name, overrides)


C = TypeVar("C", bound=LatentModelConfig)


def pick_preset(presets: Mapping[str, C], name: str, overrides: Mapping[str, Any]) -> C:
    """``presets[name]`` with ``overrides`` applied; ``ValueError`` naming the valid presets or fields."""
    if name not in presets:
        raise ValueError(f"unknown world-model preset {name!r}; valid: {', '.join(presets)}")
    base = presets[name]
    unknown = sorted(set(overrides) - {f.name for f in fields(base)})
    if unknown:
        raise ValueError(f"unknown {type(base).__name__} field {unknown[0]!r}; valid: {', '.join(f.name for f in fields(base))}")
    return replace(base, **overrides)
