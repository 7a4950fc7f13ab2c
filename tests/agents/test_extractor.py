"""BabyAIExtractor: shapes on shiftgrid/minigrid/BabyAI, SB3's image preprocessing undone, text conditioning, gradients."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.vec_env import VecTransposeImage

from shiftgrid.agents.run.config import TrainConfig
from shiftgrid.agents.run.registry import SB3_LEARNERS
from shiftgrid.agents.sb3.build import build_model
from shiftgrid.agents.sb3.extractor import BabyAIExtractor, TextEncoder
from shiftgrid.agents.training.envs import make_vec
from shiftgrid.envs.language import VOCAB
from shiftgrid.envs.learner_env import make_env

ENVS = [("shiftgrid/GoTo-v1", "size/far"), ("shiftgrid/Pickup-v1", None), ("MiniGrid-Empty-5x5-v0", None), ("BabyAI-GoToLocal-v0", None)]


def observations(env_id: str, split: str | None, n: int = 6) -> tuple[spaces.Dict, dict[str, np.ndarray]]:
    """A batch of real observations (one per reset seed) and the env's observation space."""
    env = make_env(env_id, split)
    obs = [env.reset(seed=s)[0] for s in range(n)]
    return env.observation_space, {k: np.stack([o[k] for o in obs]) for k in obs[0]}


def as_sb3(space: spaces.Dict, batch: dict, normalize: bool, transpose: bool) -> tuple[spaces.Dict, dict]:
    """What a policy hands its extractor: optionally channels-first (VecTransposeImage), then preprocess_obs."""
    if transpose:
        space = spaces.Dict({**space.spaces, "image": VecTransposeImage.transpose_space(space["image"])})
        batch = {**batch, "image": batch["image"].transpose(0, 3, 1, 2)}
    tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
    return space, preprocess_obs(tensors, space, normalize_images=normalize)


@pytest.mark.parametrize("env_id,split", ENVS)
def test_features_shape_and_sb3_preprocessing_is_undone(env_id, split):
    space, batch = observations(env_id, split)
    torch.manual_seed(0)
    ext = BabyAIExtractor(space, features_dim=48)
    reference = ext(as_sb3(space, batch, normalize=False, transpose=False)[1])
    assert reference.shape == (6, 48) and torch.isfinite(reference).all()
    for normalize, transpose in [(True, False), (False, True), (True, True)]:
        sb3_space, pre = as_sb3(space, batch, normalize, transpose)
        twin = BabyAIExtractor(sb3_space, features_dim=48)
        twin.load_state_dict(ext.state_dict())
        torch.testing.assert_close(twin(pre), reference)  # the same integer codes reached the embeddings


def test_codes_reach_the_embedding_as_exact_integers():
    space, batch = observations("shiftgrid/GoTo-v1", None)
    sb3_space, pre = as_sb3(space, batch, normalize=True, transpose=True)
    ext = BabyAIExtractor(sb3_space)
    seen = []
    ext.cells.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    ext(pre)
    offsets = torch.arange(3) * 16
    torch.testing.assert_close(seen[0] - offsets, torch.as_tensor(batch["image"]).long())


def test_gradients_reach_the_mission_encoder_and_film():
    space, batch = observations("BabyAI-GoToLocal-v0", None)
    ext = BabyAIExtractor(space)
    ext(as_sb3(space, batch, normalize=False, transpose=False)[1]).pow(2).sum().backward()
    for name in ["mission.gru.weight_ih_l0", "words.weight", "film.0.film.weight", "film.1.film.weight", "cells.weight", "direction.weight"]:
        grad = dict(ext.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_output_depends_on_the_mission():
    space, batch = observations("shiftgrid/GoTo-v1", None, n=1)
    ext = BabyAIExtractor(space)
    _, pre = as_sb3(space, batch, normalize=False, transpose=False)
    other = dict(pre, mission=pre["mission"].clone())
    other["mission"][0, 2] = VOCAB.index("purple") if other["mission"][0, 2] != VOCAB.index("purple") else VOCAB.index("red")
    assert not torch.allclose(ext(pre), ext(other))


def test_text_encoder_ignores_trailing_padding_and_reads_empty_texts_as_zero():
    enc = TextEncoder(torch.nn.Embedding(len(VOCAB), 8, padding_idx=0), hidden=5)
    short = torch.tensor([[3.0, 4.0, 5.0, 0.0], [6.0, 0.0, 0.0, 0.0]])
    long = torch.cat([short, torch.zeros(2, 28)], dim=1)
    torch.testing.assert_close(enc(short), enc(long))
    assert enc(torch.zeros(3, 32)).abs().sum() == 0
    mixed = enc(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    assert mixed[1].abs().sum() == 0 and mixed[0].abs().sum() > 0


def test_advice_is_encoded_when_present():
    space, batch = observations("shiftgrid/GoTo-v1", None, n=2)
    space = spaces.Dict({**space.spaces, "advice": space["mission"]})
    batch = {**batch, "advice": batch["mission"][::-1].copy()}
    ext = BabyAIExtractor(space)
    assert ext.advice is not None
    _, pre = as_sb3(space, batch, normalize=False, transpose=False)
    out = ext(pre)
    silent = ext(dict(pre, advice=torch.zeros_like(pre["advice"])))
    assert not torch.allclose(out, silent)
    out.sum().backward()
    assert ext.advice.gru.weight_ih_l0.grad.abs().sum() > 0


def test_flatten_pool_feeds_every_cell_to_the_head():
    space, batch = observations("shiftgrid/GoTo-v1", None, n=2)
    _, pre = as_sb3(space, batch, normalize=False, transpose=False)
    ext = BabyAIExtractor(space, pool="flatten", channels=8, direction_dim=4)
    assert ext.head[0].in_features == 8 * 7 * 7 + 4 and ext(pre).shape == (2, 128)
    with pytest.raises(ValueError, match="pool must be one of max, flatten, got 'mean'"):
        BabyAIExtractor(space, pool="mean")


def test_rejects_observations_without_codes():
    with pytest.raises(ValueError, match="image and mission"):
        BabyAIExtractor(spaces.Dict({"image": spaces.Box(0, 255, (7, 7, 3), np.uint8)}))


@pytest.mark.parametrize("algo", sorted(SB3_LEARNERS))
@pytest.mark.parametrize("env_id", ["MiniGrid-Empty-5x5-v0", "BabyAI-GoToLocal-v0"])
def test_every_algorithm_uses_it_on_minigrid_and_babyai(algo, env_id):
    small = {"dqn": {"buffer_size": 100}, "a2c": {"n_steps": 8}}.get(algo, {"n_steps": 8, "batch_size": 8})
    config = TrainConfig(algo=algo, env=env_id, n_envs=1, device="cpu", hyperparams=small)
    model = build_model(config, make_vec(config))
    extractor = model.policy.q_net.features_extractor if algo == "dqn" else model.policy.features_extractor
    assert isinstance(extractor, BabyAIExtractor)
    assert extractor.channels_first  # SB3 transposed the codes; the extractor knows
    _, batch = observations(env_id, None, n=3)
    actions, _ = model.predict(batch, deterministic=True)
    assert actions.shape == (3,) and ((actions >= 0) & (actions < 7)).all()
