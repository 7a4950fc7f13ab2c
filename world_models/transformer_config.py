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

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and loss settings of the transformer world model (STORM's recipe, sized for grid worlds)."""

    cell_embed: int = 8
    """Embedding width of each cell code (type, colour and state each get one)."""
    token_embed: int = 16
    """Embedding width of mission tokens (mean over the non-padding tokens)."""
    embed: int = 128
    """Encoder output width."""
    hidden: int = 200
    """Units of every MLP layer (encoder, posterior, prior, heads)."""
    layers: int = 1
    """Hidden layers per head MLP."""
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
    stoch: int = 8
    """Number of categorical latents in the one latent token per step."""
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
    """``torch.compile`` the transformer blocks' imagination step (off unless asked)."""
    compile_backend: str = "inductor"
    """Backend for ``compile`` (``eager`` checks tracing without a compiler)."""

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
    if name not in PRESETS:
        raise ValueError(f"unknown world-model preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
