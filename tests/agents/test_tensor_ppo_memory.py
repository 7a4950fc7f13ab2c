"""``tensor-ppo`` with memory: the recurrent forward, a task only memory solves, acting with a state.

Resume, validation, evaluation and bad settings with memory are in test_tensor_ppo.py, beside the feedforward cases."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.tensor_ppo.networks import ActorCritic
from shiftgrid.agents.tensor_ppo.ppo import TensorPPO

EMPTY = "MiniGrid-Empty-5x5-v0"


def observations(steps: int, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randint(0, 11, (steps, batch, 7, 7, 3), dtype=torch.uint8, generator=g),
            "direction": torch.randint(0, 4, (steps, batch), generator=g),
            "mission": torch.randint(1, 30, (steps, batch, 5), generator=g)}


def test_a_sequence_equals_step_by_step_with_the_same_resets():
    torch.manual_seed(0)
    net = ActorCritic.build("cheap", 40, {}, memory=12)
    obs, steps, batch = observations(6, 4), 6, 4
    first = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    start = torch.randn(batch, 12)
    logits, values, end = net.sequence(obs, start, first)
    state = start
    for t in range(steps):
        step_logits, step_values, state = net.step({k: v[t] for k, v in obs.items()}, state, first[t])
        assert torch.allclose(step_logits, logits[t], atol=1e-6) and torch.allclose(step_values, values[t], atol=1e-6)
    assert torch.allclose(state, end, atol=1e-6)
    # a reset forgets the start: an env's outputs from its first restart on are those of a zero start, not before
    fresh = net.sequence(obs, torch.zeros(batch, 12), first)[1].detach()
    values = values.detach()
    for env, restart in ((3, 1), (2, 4)):  # env 3 restarts at step 1, env 2 at step 4
        assert torch.allclose(fresh[restart:, env], values[restart:, env], atol=1e-6)
        assert (fresh[:restart, env] - values[:restart, env]).abs().min() > 1e-3


class CueEngine:
    """A memory task with the engine's step protocol (next-step auto-reset): a key or a ball is in front
    of the agent on an episode's first step only, then ``delay`` steps show an empty view; the action
    of the last step must name what was seen (0 for the key, 1 for the ball) to succeed (reward 1).

    Without memory the last view says nothing of the cue: no policy succeeds more than half of the time.
    """

    def __init__(self, n: int, delay: int, seed: int = 0):
        self.n, self.delay, self.generator = n, delay, torch.Generator().manual_seed(seed)
        self.cue = torch.randint(0, 2, (n,), generator=self.generator)
        self.phase = torch.zeros(n, dtype=torch.int64)
        self.needs_reset = torch.zeros(n, dtype=torch.bool)

    def observation(self) -> dict[str, torch.Tensor]:
        image = torch.zeros(self.n, 7, 7, 3, dtype=torch.uint8)
        image[..., 0] = 1  # empty floor
        image[:, 3, 5, 0] = torch.where(self.phase == 0, 5 + self.cue, 1).to(torch.uint8)  # key 5, ball 6, in front
        return {"image": image, "direction": torch.zeros(self.n, dtype=torch.int64),
                "mission": torch.ones(self.n, 3, dtype=torch.int64)}

    def step(self, action: torch.Tensor, autoreset: bool = True, check: bool = False):
        acting = ~self.needs_reset
        terminated = acting & (self.phase == self.delay)
        success = terminated & (action == self.cue)
        fresh = torch.randint(0, 2, (self.n,), generator=self.generator)
        self.cue = torch.where(self.needs_reset, fresh, self.cue)
        self.phase = torch.where(self.needs_reset, 0, self.phase + 1)
        self.needs_reset = terminated
        return self.observation(), success.float(), terminated, torch.zeros(self.n, dtype=torch.bool), {"success": success}


def cue_success(memory: int, rollouts: int, seed: int = 0) -> float:
    """Training success of tensor-ppo's own collect and update on :class:`CueEngine` over its last 5 rollouts.

    Advantages are not normalised: once every episode succeeds they are all near zero, and scaled
    to unit spread their noise pushed a solved policy back to chance now and then (seeds 1 and 2).
    With memory, seeds 0-3 stood at 0.96-0.98 over rollouts 46-50 when this was written.
    """
    n_envs, n_steps = 32, 10
    learner = TensorPPO(TrainConfig(algo="tensor-ppo", env=EMPTY, n_envs=n_envs, device="cpu", seed=seed, hyperparams={
        "n_steps": n_steps, "batch_size": 80, "n_epochs": 4, "learning_rate": 3e-3, "memory": memory, "hidden": 32,
        "normalize_advantage": False}),
        training=False)
    engine = CueEngine(n_envs, delay=3, seed=seed)
    learner.env = SimpleNamespace(engine=engine)
    run = SimpleNamespace(state=SimpleNamespace(stop_reason=None, detail=None))
    obs, valid = engine.observation(), torch.ones(n_envs, dtype=torch.bool)
    episode = (torch.zeros(n_envs), torch.zeros(n_envs, dtype=torch.int64))
    carried = (learner.policy.initial_state(n_envs), torch.ones(n_envs, dtype=torch.bool))
    successes = []
    for _ in range(rollouts):
        r, obs, valid, episode, carried = learner._collect(obs, valid, episode, carried)
        assert learner._update(r, run) is not None
        successes.append(r.success[r.ended].float())
    return float(torch.cat(successes[-5:]).mean())


@pytest.mark.training
def test_with_memory_ppo_learns_a_cue_seen_once_that_feedforward_cannot_use():
    remembered = cue_success(memory=16, rollouts=50)
    forgotten = cue_success(memory=0, rollouts=50)
    assert remembered >= 0.9, remembered
    assert forgotten <= 0.65, forgotten  # chance is 0.5: the last view carries no information about the cue


def test_predict_carries_the_state_and_zeroes_it_where_an_episode_starts():
    learner = TensorPPO(TrainConfig(algo="tensor-ppo", env=EMPTY, n_envs=4, device="cpu",
                                    hyperparams={"n_steps": 4, "batch_size": 8, "memory": 8}), training=False)
    obs = observations(5, 3)
    first = torch.tensor([[1, 1, 1], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.bool)
    logits = learner.policy.sequence(obs, torch.zeros(3, 8), first)[0]
    state = None
    for t in range(5):
        numpy_obs = {k: v[t].numpy() for k, v in obs.items()}
        actions, state = learner.predict(numpy_obs, state, episode_start=first[t].numpy(), deterministic=True)
        assert isinstance(state, np.ndarray) and state.shape == (3, 8)
        assert actions.tolist() == logits[t].argmax(dim=1).tolist()
    feedforward = TensorPPO(TrainConfig(algo="tensor-ppo", env=EMPTY, n_envs=4, device="cpu",
                                        hyperparams={"n_steps": 4, "batch_size": 8}), training=False)
    assert feedforward.predict({k: v[0].numpy() for k, v in obs.items()}, None, first[0].numpy())[1] is None
