"""Transformer world-model configuration (the STORM recipe) and its size presets.

Example:
    >>> preset("tiny").d_model, preset("small").context, preset("small", blocks=3).blocks
    (64, 16, 3)
    >>> preset("huge")
    Traceback (most recent call last):
    ...
    ValueError: unknown world-model preset 'huge'; valid: tiny, small, medium, large
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftgrid.world_models.config import LatentModelConfig, pick_preset


@dataclass(frozen=True)
class TransformerConfig(LatentModelConfig):
    """Sizes and loss settings of the transformer world model (STORM's recipe, sized for grid worlds)."""

    d_model: int = 128
    """Transformer width: each step's (latent, action) token and the hidden state read by the heads."""
    blocks: int = 2
    """Transformer blocks (pre-LayerNorm causal self-attention and a feed-forward MLP each)."""
    attn_heads: int = 4
    """Attention heads per block (``d_model`` must be a multiple)."""
    ff: int = 256
    """Feed-forward units per block."""
    context: int = 16
    """Steps each step attends to (itself included): the attention window in training and the
    key/value cache kept in imagination are both this long, so memory per rollout is bounded."""

    def __post_init__(self) -> None:
        if self.d_model % self.attn_heads or self.context < 1 or self.blocks < 1:
            raise ValueError(f"need d_model a multiple of attn_heads, context >= 1 and blocks >= 1; got "
                             f"d_model={self.d_model}, attn_heads={self.attn_heads}, context={self.context}, "
                             f"blocks={self.blocks}")


PRESETS: dict[str, TransformerConfig] = {
    "tiny": TransformerConfig(cell_embed=4, token_embed=8, embed=64, hidden=64, d_model=64, blocks=1, attn_heads=2,
                              ff=128, context=8, stoch=4, classes=8, lr=1e-3),
    "small": TransformerConfig(),
    "medium": TransformerConfig(cell_embed=16, token_embed=32, embed=256, hidden=512, layers=2, d_model=256, blocks=4,
                                attn_heads=8, ff=1024, context=32, stoch=16, classes=16, lr=1e-4),
    "large": TransformerConfig(cell_embed=32, token_embed=64, embed=512, hidden=1024, layers=2, d_model=512,
                               blocks=6, attn_heads=8, ff=2048, context=64, stoch=32, classes=32, lr=1e-4),
}


def preset(name: str, **overrides: object) -> TransformerConfig:
    """The named preset, with fields replaced by ``overrides``."""
    return pick_preset(PRESETS, name, overrides)
