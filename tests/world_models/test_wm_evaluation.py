"""World-model scoring under shift: metrics on cases with known answers, window alignment, seeds, both families."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

from shiftgrid.agents.evaluation.episodes import HELD_OUT_SEED_BASE
from shiftgrid.agents.evaluation.world_model import evaluation_seeds, record_splits
from shiftgrid.agents.model_based.behaviour import make_behaviour
from shiftgrid.envs.learner_env import make_env
from shiftgrid.world_models.interface import (
    NUM_COLORS,
    NUM_STATES,
    NUM_TYPES,
    Imagined,
    LatentState,
    ObsDistribution,
    ObserveOutput,
    ObsSpec,
    Predictions,
    WorldModel,
)
from shiftgrid.world_models.models import build_model, model_names
from shiftgrid.world_models.scoring import check_horizons, metric_names, score_episodes, score_splits, tally

H = W = 3
SURE = 40.0  # logit of the predicted code: probability 1 - O(e^-40)


def one_hot_dist(image: torch.Tensor, direction: torch.Tensor) -> ObsDistribution:
    """A distribution sure of ``image`` (``(..., H, W, 3)``) and ``direction``."""
    def sure(codes: torch.Tensor, n: int) -> torch.Tensor:
        return torch.nn.functional.one_hot(codes.long(), n).float() * SURE
    return ObsDistribution(sure(image[..., 0], NUM_TYPES), sure(image[..., 1], NUM_COLORS),
                           sure(image[..., 2], NUM_STATES), sure(direction, 4))


def frames(n: int, seed: int) -> torch.Tensor:
    """``n`` random frames of codes 1..2 per channel (so many cells repeat between frames)."""
    return torch.from_numpy(np.random.default_rng(seed).integers(1, 3, size=(n, H, W, 3)).astype(np.uint8))


def score(dist, image, direction, previous, reward=None, pred_reward=None, terminated=None, cont=None,
          imagined=None, real=None):
    n = len(image)
    zeros = torch.zeros(n)
    return tally(dist, zeros if pred_reward is None else pred_reward, torch.ones(n) if cont is None else cont,
                 zeros if imagined is None else imagined, {"image": image, "direction": direction}, previous,
                 zeros if reward is None else reward, torch.zeros(n, dtype=torch.bool) if terminated is None else terminated,
                 zeros if real is None else real).metrics(5)


def test_a_perfect_prediction_scores_one_and_zero_error():
    image, previous = frames(6, 0), frames(6, 1)
    direction = torch.tensor([0, 1, 2, 3, 0, 1])
    reward = torch.tensor([0.0, 0.9, 0.0, 0.0, 0.3, 0.0])
    terminated = torch.tensor([False, True, False, False, True, False])
    real = torch.tensor([0.0, 0.9, 0.9, 0.0, 0.3, 0.3])
    m = score(one_hot_dist(image, direction), image, direction, previous, reward, reward.clone(), terminated,
              (~terminated).float(), real.clone(), real)
    for name in ("cell_accuracy", "changed_cell_accuracy", "frame_accuracy", "direction_accuracy", "reward_f1",
                 "termination_f1"):
        assert m[f"{name}@5"] == 1.0, name
    assert m["obs_nll@5"] == pytest.approx(0.0, abs=1e-9)
    assert m["return_gap@5"] == 0.0 and m["return_bias@5"] == 0.0 and m["windows@5"] == 6


def test_predicting_the_previous_frame_gets_every_changed_cell_wrong():
    image, previous = frames(8, 2), frames(8, 3)
    previous[0] = image[0]  # one frame with no change at all
    direction = torch.tensor([0, 1, 2, 3] * 2)
    m = score(one_hot_dist(previous, (direction + 1) % 4), image, direction, previous)
    unchanged = (image == previous).all(-1)
    assert m["cell_accuracy@5"] == pytest.approx(float(unchanged.float().mean()))
    assert 0 < m["cell_accuracy@5"] < 1
    assert m["changed_cell_accuracy@5"] == 0.0
    assert m["frame_accuracy@5"] == pytest.approx(1 / 8)
    assert m["direction_accuracy@5"] == 0.0


def test_changed_cell_accuracy_ignores_static_cells():
    previous = torch.ones(4, H, W, 3, dtype=torch.uint8)
    image = previous.clone()
    image[:, 0, 0] = 2  # one changed cell per frame; the model gets it right and every static cell wrong
    predicted = torch.zeros_like(image)
    predicted[:, 0, 0] = 2
    m = score(one_hot_dist(predicted, torch.zeros(4)), image, torch.zeros(4), previous)
    assert m["changed_cell_accuracy@5"] == 1.0
    assert m["cell_accuracy@5"] == pytest.approx(1 / (H * W))
    assert m["frame_accuracy@5"] == 0.0


def test_known_f1_nll_and_return_gap_of_a_wrong_prediction():
    n = 4
    image = frames(n, 4)
    uniform = ObsDistribution(torch.zeros(n, H, W, NUM_TYPES), torch.zeros(n, H, W, NUM_COLORS),
                              torch.zeros(n, H, W, NUM_STATES), torch.zeros(n, 4))
    m = score(uniform, image, torch.zeros(n), image,
              reward=torch.tensor([0.5, 0.0, 0.5, 0.0]), pred_reward=torch.tensor([0.5, 0.5, 0.01, 0.0]),  # TP FP FN TN
              terminated=torch.tensor([True, True, False, False]), cont=torch.tensor([0.2, 0.9, 0.9, 0.9]),  # TP FN TN TN
              imagined=torch.tensor([1.0, 1.0, 0.0, 0.0]), real=torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert m["reward_f1@5"] == pytest.approx(0.5)  # 2 TP / (2 TP + FP + FN) = 2 / 4
    assert m["termination_f1@5"] == pytest.approx(2 / 3)
    cells = H * W * math.log(len(OBJECT_TO_IDX) * len(COLOR_TO_IDX) * len(STATE_TO_IDX))
    assert m["obs_nll@5"] == pytest.approx(cells + math.log(4))
    assert m["return_gap@5"] == pytest.approx(0.75) and m["return_bias@5"] == pytest.approx(0.25)


def test_f1_without_any_positive_is_nan_and_names_carry_the_horizon():
    image = frames(3, 5)
    m = score(one_hot_dist(image, torch.zeros(3)), image, torch.zeros(3), image)
    assert math.isnan(m["reward_f1@5"]) and math.isnan(m["termination_f1@5"])
    assert math.isnan(m["changed_cell_accuracy@5"])  # no cell changed
    assert metric_names([1, 15]) == [f"{m}@{k}" for m in ("cell_accuracy", "changed_cell_accuracy", "frame_accuracy",
                                                           "direction_accuracy", "obs_nll", "reward_f1", "termination_f1",
                                                           "return_gap", "return_bias", "windows") for k in (1, 15)]
    assert check_horizons([5, 1, 5], 2) == (1, 5)
    for bad in ([0, 5], []):
        with pytest.raises(ValueError, match="horizons must be integers >= 1"):
            check_horizons(bad, 2)
    with pytest.raises(ValueError, match="context must be >= 1"):
        check_horizons([1], 0)


class Persistence(WorldModel):
    """Predicts that no cell changes (every imagined frame's cells are the last observed ones), that the direction
    is the action taken into the step modulo 4, reward 0 and no end."""

    def __init__(self, spec: ObsSpec):
        super().__init__()
        self.spec, self.config = spec, None
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # a device to live on
        self.cells = int(np.prod(spec.image_shape))

    def _state(self, image: torch.Tensor, direction: torch.Tensor) -> LatentState:
        deter = torch.cat([image.flatten(-3).float(), direction.float()[..., None]], -1)
        return LatentState(deter, torch.zeros(*deter.shape[:-1], 1, 1))

    def observe(self, batch):
        states = self._state(batch["image"], batch["direction"])
        return states, ObserveOutput({}, {}, self.predict(states), states.stoch, states.stoch)

    def imagine(self, start, actions, horizon=None, decode=False, generator=None):
        horizon = actions.shape[1] if horizon is None else horizon
        states = LatentState.stack([start] * horizon, 1)
        states.deter[..., -1] = (actions[:, :horizon] % 4).float()
        return Imagined(states, actions[:, :horizon], self.predict(states, decode))

    def predict(self, state, decode=True):
        image = state.deter[..., :self.cells].round().to(torch.uint8).reshape(*state.deter.shape[:-1], *self.spec.image_shape)
        zeros = torch.zeros(state.deter.shape[:-1])
        dist = one_hot_dist(image, state.deter[..., -1].round().long()) if decode else None
        return Predictions(dist, zeros, zeros[..., None], zeros + 10.0)

    def loss(self, batch):
        raise NotImplementedError

    def initial(self, batch):  # an imagination-only stub: it never filters online
        raise NotImplementedError

    def obs_step(self, state, action, embed, is_first, generator=None):
        raise NotImplementedError


def episode(length: int, seed: int, terminated: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    reward = np.zeros(length + 1, np.float32)
    reward[-1] = 0.7 if terminated else 0.0
    return {"image": rng.integers(1, 3, size=(length + 1, H, W, 3)).astype(np.uint8),
            "direction": rng.integers(0, 4, size=length + 1), "mission": np.zeros((length + 1, 4), np.int64),
            "action": np.append(rng.integers(0, 7, size=length), 0), "reward": reward,
            "terminated": np.arange(length + 1) == (length if terminated else -1),
            "truncated": np.arange(length + 1) == (-1 if terminated else length),
            "is_first": np.arange(length + 1) == 0}


def test_windows_predict_the_steps_after_their_context():
    """The persistence model's scores, by brute force over every window, at every horizon."""
    spec = ObsSpec(image_shape=(H, W, 3), token_lengths=(("mission", 4),))
    eps = [episode(9, 0, True), episode(4, 1, False), episode(12, 2, True), episode(2, 3, True)]
    context, horizons = 3, (1, 2, 6)
    got = score_episodes(Persistence(spec), eps, context=context, horizons=horizons, batch_size=5)
    for k in horizons:
        right = changed = changed_right = frames_right = windows = gap = direction = 0.0
        cells = 0
        for e in eps:
            n = len(e["action"])
            for s in range(n - context):
                last, t = s + context - 1, s + context - 1 + k
                if t > n - 1:
                    continue
                ok = (e["image"][last] == e["image"][t]).all(-1)
                moved = (e["image"][t] != e["image"][t - 1]).any(-1)
                right, cells, frames_right = right + ok.sum(), cells + ok.size, frames_right + ok.all()
                changed, changed_right = changed + moved.sum(), changed_right + (ok & moved).sum()
                gap += abs(0.0 - e["reward"][last + 1:t + 1].sum())
                direction += e["action"][t - 1] % 4 == e["direction"][t]  # the action taken from the step before
                windows += 1
        assert got[f"windows@{k}"] == windows > 0
        assert got[f"cell_accuracy@{k}"] == pytest.approx(right / cells)
        assert got[f"changed_cell_accuracy@{k}"] == pytest.approx(changed_right / changed)
        assert got[f"frame_accuracy@{k}"] == pytest.approx(frames_right / windows)
        assert got[f"return_gap@{k}"] == pytest.approx(gap / windows)
        assert got[f"direction_accuracy@{k}"] == pytest.approx(direction / windows)
    assert got["windows@1"] == sum(len(e["action"]) - context for e in eps if len(e["action"]) > context)
    assert got["reward_f1@1"] == 0.0  # real rewards at episode ends, none predicted
    assert math.isnan(score_episodes(Persistence(spec), eps[3:], context=context, horizons=(1,))["cell_accuracy@1"])


def test_evaluation_seeds_are_disjoint_from_training_and_validation():
    # a world model's data comes from the train split (reset seeds config.seed + steps); test splits are held out by
    # construction; on ids without splits evaluation resets from 10**9 on, which training never passes to reset
    assert evaluation_seeds("shiftgrid/GoTo-v1", 3, seed=4) == range(4, 7)
    assert evaluation_seeds("MiniGrid-Empty-5x5-v0", 2)[0] == HELD_OUT_SEED_BASE
    with pytest.raises(ValueError, match="overlap seeds 5..9"):
        evaluation_seeds("shiftgrid/GoTo-v1", 10, reserved=[(5, 9)])
    played = record_splits(make_behaviour("random", noise=1.0, seed=0), "MiniGrid-Empty-5x5-v0", "all", episodes=3,
                           n_envs=2, progress=False)
    assert list(played) == ["id"]
    for i, e in enumerate(played["id"]):  # episode i is the level of reset seed 10**9 + i
        first, _ = make_env("MiniGrid-Empty-5x5-v0").reset(seed=HELD_OUT_SEED_BASE + i)
        assert (e["image"][0] == first["image"]).all() and e["direction"][0] == first["direction"]
        assert e["is_first"][0] and not e["is_first"][1:].any() and (e["terminated"][-1] or e["truncated"][-1])
        assert not (e["terminated"][:-1] | e["truncated"][:-1]).any()


@pytest.mark.parametrize("family", model_names())
def test_both_families_score_every_split_repeatably(family):
    env = "shiftgrid/GoTo-v1"
    spec = ObsSpec.from_spaces(make_env(env).observation_space, make_env(env).action_space)
    torch.manual_seed(0)
    model = build_model(family, "tiny", spec)
    played = record_splits(make_behaviour("random", noise=1.0, seed=0), env, ["id", "size/far"], episodes=2,
                           progress=False)
    scores = score_splits(model, played, context=2, horizons=(1, 3), batch_size=64, progress=False)
    assert list(scores) == ["id", "size/far"] and list(scores["id"]) == metric_names((1, 3))
    for split, ms in scores.items():
        assert ms["windows@1"] > ms["windows@3"] > 0
        for m in ("cell_accuracy", "frame_accuracy", "direction_accuracy"):
            assert 0 <= ms[f"{m}@1"] <= 1
        assert ms["obs_nll@3"] > 0 and ms["return_gap@3"] >= 0
    again = score_splits(model, played, context=2, horizons=(1, 3), batch_size=64, progress=False)
    for split in scores:  # the latent samples are seeded: the same numbers again
        assert again[split] == pytest.approx(scores[split], nan_ok=True)


def test_one_step_report_scores_rewards_and_episode_ends_as_the_evaluation_does(random_batch):
    from shiftgrid.world_models.metrics import one_step_accuracy

    torch.manual_seed(0)
    model = build_model("rssm", "tiny", ObsSpec())  # a fresh reward head predicts 0 everywhere
    batch = random_batch(4, 8, seed=1)
    batch["is_first"][:] = False
    batch["reward"] = torch.zeros(4, 8)
    batch["terminated"] = torch.zeros(4, 8, dtype=torch.bool)
    scores = one_step_accuracy(model, batch)
    assert math.isnan(scores["reward_f1"])  # no rewarded step, real or predicted: nothing to score
    batch["reward"][1, 5] = 1.0
    assert one_step_accuracy(model, batch)["reward_f1"] == 0.0  # a real reward, none predicted
    cont = one_step_accuracy(model, batch)["termination_f1"]
    assert math.isnan(cont) or cont == 0.0  # no real end: any predicted end is a false positive
