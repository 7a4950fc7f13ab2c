"""Starting a run from another run's policy weights (``--init-from RUN``), e.g. PPO fine-tuning a cloned policy.

Every learner whose state holds ``policy`` (the SB3 learners and the imitation learners, which
train PPO's very network, from PPO's presets for it) can start another such learner: the weights
load strictly, so a network of another shape is refused in one line that names the source's
network settings to pass. Only the weights carry over, not the
optimizer, the step count or the evaluations: the new run counts its own steps. What the
source run's teacher cost (``teacher/cost.json``) was is returned, so the new run reports it
beside its own as ``init_<name>`` (the demonstrations a cloned policy learned from count).

Example:
    >>> inherited_cost("/nonexistent")
    {}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shiftgrid.agents.run.checkpoint import CheckpointError, find_checkpoint, read_checkpoint
from shiftgrid.agents.run.presets import NETWORK_KEYS
from shiftgrid.agents.run.rundir import CHECKPOINT_DIR, RunDir
from shiftgrid.agents.run.services import TEACHER_COST_FILE


def policy_module(learner: Any) -> Any:
    """The torch module holding ``learner``'s policy (``learner.policy``, or an SB3 model's ``model.policy``)."""
    module = getattr(learner, "policy", None)
    if module is None and hasattr(learner, "model"):
        module = getattr(learner.model, "policy", None)
    if module is None or not hasattr(module, "load_state_dict"):
        raise CheckpointError(f"{type(learner).__name__} has no policy network that --init-from could start")
    return module


def warm_start(learner: Any, source: str | Path) -> None:
    """Load the policy weights of the run (or checkpoint) ``source`` into ``learner``'s policy.

    Raises:
        CheckpointError: no readable checkpoint, one without policy weights, or weights of another shape.
    """
    path = find_checkpoint(source)
    checkpoint = read_checkpoint(path)
    weights = checkpoint.state.get("policy") if isinstance(checkpoint.state, dict) else None
    if not isinstance(weights, dict):
        raise CheckpointError(f"--init-from {source}: the {checkpoint.learner} checkpoint {path} holds no policy weights")
    try:
        policy_module(learner).load_state_dict(weights)
    except RuntimeError as e:
        reason = str(e).strip().splitlines()
        theirs = {k: checkpoint.config.get(k) for k in NETWORK_KEYS}
        raise CheckpointError(f"--init-from {source}: the {checkpoint.learner} policy in {path} does not fit this "
                              f"learner's network ({reason[1].strip() if len(reason) > 1 else reason[0]}); its network was "
                              + ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in theirs.items())
                              + ": give the same with --set") from None


def inherited_cost(source: str | Path) -> dict[str, float]:
    """The teacher cost of the run ``source`` (a run dir, or a checkpoint in its ``checkpoints/``), ``init_``-prefixed."""
    source = Path(source)
    root = source.parent.parent if source.is_file() and source.parent.name == CHECKPOINT_DIR else source
    file = RunDir(root).teacher / TEACHER_COST_FILE
    if not file.is_file():
        return {}
    return {f"init_{k}": float(v) for k, v in json.loads(file.read_text()).items()}
