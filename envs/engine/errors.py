"""The engine's user errors (no torch needed to name them): each says what was given and what is valid."""


class EngineError(ValueError):
    """Bad input to the engine: actions of the wrong shape or range, a device torch cannot use, a bad level index,
    ``num_envs`` < 1, or no torch to run it."""


class BankError(ValueError):
    """A bank that cannot be used: another splits, family, minigrid or format version, a corrupt file, too few levels."""
