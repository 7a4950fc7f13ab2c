"""SB3 models saved with ``model.save`` (a ``.zip``): tell their algorithm and load them for evaluation.

The algorithm is read from the zip's ``data`` entry (the policy class's module, and the
hyperparameters only some algorithms have): ``recurrent-ppo`` (sb3_contrib's LSTM policies),
``dqn`` (DQN's Q-network policies), ``ppo`` (``n_epochs``) or ``a2c``. Loading goes through
SB3's own ``load``, which unpickles the classes the model was saved with (a zip runs code while
loading: load only zips you trust, as with any SB3 model).

Example:
    >>> import tempfile
    >>> from stable_baselines3 import A2C
    >>> path = tempfile.mkdtemp() + "/model.zip"
    >>> A2C("MlpPolicy", "CartPole-v1", device="cpu").save(path)
    >>> zip_algorithm(path)
    'a2c'
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from shiftgrid.agents.run.registry import SB3_LEARNERS

#: Registered learner names an SB3 zip can be loaded as (``--algo``): the SB3 learners.
ZIP_ALGOS = SB3_LEARNERS


class ZipModelError(ValueError):
    """A ``.zip`` that is not an SB3 model, or whose algorithm cannot be told."""


def zip_data(path: str | Path) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 zip (without unpickling anything)."""
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("data"))
    except FileNotFoundError:
        raise ZipModelError(f"{path} does not exist") from None
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise ZipModelError(f"{path} is not an SB3 model saved by model.save (no readable 'data' entry)") from None


def zip_algorithm(path: str | Path) -> str:
    """The learner name (one of :data:`ZIP_ALGOS`) of the SB3 zip at ``path``.

    Raises:
        ZipModelError: not an SB3 zip, or an algorithm this cannot tell (pass it explicitly then).
    """
    data = zip_data(path)
    policy = data.get("policy_class") or {}
    module = str(policy.get("__module__", "")) if isinstance(policy, dict) else ""
    if module.startswith("sb3_contrib.common.recurrent"):
        return "recurrent-ppo"
    if module.startswith("stable_baselines3.dqn") or "exploration_rate" in data:
        return "dqn"
    if module.startswith("stable_baselines3.common.policies"):
        return "ppo" if "n_epochs" in data else "a2c"
    raise ZipModelError(f"cannot tell the algorithm of {path} (policy class from {module or 'an unknown module'}); "
                        f"pass --algo, one of {', '.join(ZIP_ALGOS)}")


def load_zip(path: str | Path, algo: str | None = None, device: str = "auto") -> tuple[Any, str]:
    """``(model, algo)``: the SB3 model saved at ``path``, loaded as ``algo`` (default: :func:`zip_algorithm`).

    Raises:
        ZipModelError: not an SB3 zip, an unknown ``algo``, or a zip ``algo``'s class cannot load.
    """
    from shiftgrid.agents.sb3.build import sb3_algorithm
    from shiftgrid.world_models.device import resolve_device

    if algo is not None and algo not in ZIP_ALGOS:
        raise ZipModelError(f"--algo {algo!r} cannot load an SB3 zip; valid: {', '.join(ZIP_ALGOS)}")
    name = algo or zip_algorithm(path)
    cls, _ = sb3_algorithm(name)
    try:
        return cls.load(str(path), device=resolve_device(device)), name
    except (AssertionError, KeyError, TypeError, ValueError, RuntimeError) as e:  # SB3 reports a mismatched class with these
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ZipModelError(f"{path} cannot be loaded as {name} ({cls.__name__}): {reason}") from None
