"""Configuration of the mechanism world model (:mod:`shiftgrid.world_models.mechanism`) and its size presets.

Example:
    >>> preset("tiny").map_size, preset("small").channels, preset("small", reach=3).reach
    (15, 16, 3)
    >>> preset("small").stoch, preset("small").classes  # its one categorical latent: the direction
    (1, 4)
    >>> preset("tiny", map_size=12)
    Traceback (most recent call last):
    ...
    ValueError: map_size must be odd and at least 2 * max(window, reach, actor_view) + 1 = 7; got 12
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftgrid.world_models.config import pick_preset


@dataclass(frozen=True)
class MechanismConfig:
    """Sizes and loss settings of the mechanism world model.

    Structural settings (what the architecture assumes) are ``map_size``, ``window``, ``reach`` and
    ``actor_view``; the rest sizes the learned networks and the optimiser.
    """

    map_size: int = 17
    """Side of the allocentric memory, in cells (odd). The agent is kept at its centre: the memory
    scrolls under it, and what scrolls off the edge is forgotten. At least ``2 * view - 1`` (13
    for a 7x7 view) so that a view in any direction fits."""
    channels: int = 16
    """Latent vector per memory cell."""
    carry: int = 16
    """Latent vector of the agent itself (what it holds)."""
    window: int = 2
    """Radius of the agent's neighbourhood, ``(2 * window + 1)`` cells a side: the cells the learned
    interaction rule may change in one step, and that the reward and continuation heads read."""
    reach: int = 2
    """Largest displacement of the agent in one step, per axis: the motion rule chooses among
    ``(2 * reach + 1) ** 2`` displacements."""
    actor_view: int = 4
    """Radius of the agent-centred crop of the memory in the features a policy reads (``deter``)."""
    cell_embed: int = 16
    """Embedding width of each observed cell code (type, colour and state each get one) when written."""
    token_embed: int = 16
    """Embedding width of mission tokens (mean over the non-padding tokens)."""
    hidden: int = 256
    """Units of the interaction rule's MLP and of the reward and continuation heads."""
    head_hidden: int = 128
    """Units of the reward and continuation heads."""
    layers: int = 1
    """Hidden layers of the reward and continuation heads."""
    decoder_hidden: int = 64
    """Units of the per-cell decoder and of the visibility network."""
    decoder_context: int = 1
    """Radius of the egocentric square of memory cells the per-cell decoder reads around each view
    cell (0: the cell alone), so that a cell never observed can be guessed from its neighbours."""
    sight: str = "view"
    """How the decoder learns which cells of the view are seen: ``view``, one network over the whole view;
    ``scan``, a small learned rule shared by every cell, scanned outward from the viewer, where a cell's
    own content never decides whether it is seen (:class:`~shiftgrid.world_models.mechanism_parts.SightScan`)."""
    reward_bins: int = 41
    """Two-hot bins of the reward head, evenly spaced in symlog space over [-20, 20]."""
    recon_scale: float = 1.0
    """Weight of the reconstruction of each observed frame from the memory it was written into."""
    blind_start: float = 0.05
    """Training only: chance per step that the model stops seeing (its observations are not written), so
    the frames after it are predicted open-loop, several steps ahead, as when imagining."""
    blind_stay: float = 0.9
    """Training only: chance per step that a blind span goes on (mean length ``1 / (1 - blind_stay)``)."""
    lr: float = 1e-3
    """Adam learning rate of the world model's own optimiser."""
    eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 100.0
    """Global gradient-norm clip."""
    bf16: bool = False
    """bf16 autocast for the networks (for CUDA; on the CPU only when asked)."""
    compile: bool = False
    """``torch.compile`` the transition step (off unless asked)."""
    compile_backend: str = "inductor"
    """Backend for ``compile`` (``eager`` checks tracing without a compiler)."""

    def __post_init__(self) -> None:
        need = 2 * max(self.window, self.reach, self.actor_view) + 1
        if self.sight not in ("view", "scan"):
            raise ValueError(f"sight must be 'view' or 'scan', got {self.sight!r}")
        if self.decoder_context < 0:
            raise ValueError(f"decoder_context must be >= 0, got {self.decoder_context}")
        if not (0 <= self.blind_start <= 1 and 0 <= self.blind_stay < 1):
            raise ValueError(f"need 0 <= blind_start <= 1 and 0 <= blind_stay < 1; got blind_start={self.blind_start}, "
                             f"blind_stay={self.blind_stay}")
        if self.map_size % 2 == 0 or self.map_size < need:
            raise ValueError(f"map_size must be odd and at least 2 * max(window, reach, actor_view) + 1 = {need}; "
                             f"got {self.map_size}")
        for name in ("channels", "carry", "cell_embed", "token_embed", "hidden", "head_hidden", "decoder_hidden",
                     "reward_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    # The interface's generic view of a model's latents: one categorical (the direction, 4 classes),
    # observed when filtering, so its KL has no free bits.
    @property
    def stoch(self) -> int:
        return 1

    @property
    def classes(self) -> int:
        return 4

    @property
    def free_nats(self) -> float:
        return 0.0


PRESETS: dict[str, MechanismConfig] = {
    "tiny": MechanismConfig(map_size=15, channels=12, carry=8, actor_view=3, cell_embed=8, token_embed=8, hidden=96,
                            head_hidden=64, decoder_hidden=32),
    "small": MechanismConfig(),
    "medium": MechanismConfig(map_size=25, channels=32, carry=32, actor_view=6, cell_embed=32, token_embed=32,
                              hidden=512, head_hidden=256, decoder_hidden=128, lr=3e-4),
    "large": MechanismConfig(map_size=33, channels=64, carry=64, actor_view=8, cell_embed=64, token_embed=64,
                             hidden=1024, head_hidden=512, decoder_hidden=256, lr=3e-4),
}


def preset(name: str, **overrides: object) -> MechanismConfig:
    """The named preset, with fields replaced by ``overrides``."""
    return pick_preset(PRESETS, name, overrides)  # type: ignore[type-var]
