"""Transformer world model only: the key/value cache against an uncached re-run, bounded context, episode masking."""

from __future__ import annotations

import pytest
import torch

from shiftgrid.world_models.interface import LatentState, ObsSpec
from shiftgrid.world_models.transformer import TransformerWorldModel
from shiftgrid.world_models.transformer_config import preset


def test_cached_imagination_equals_full_recompute(random_batch):
    """Imagining with the cache gives the hidden states and priors an uncached pass over the whole history gives."""
    torch.manual_seed(0)
    model = TransformerWorldModel(preset("tiny"), ObsSpec()).eval()
    c = model.config.context
    batch = random_batch(b=3, t=10)  # row 0 starts an episode at step 3
    horizon = 2 * c + 3  # well past the context: the oldest steps leave the cache
    with torch.no_grad():
        states, _ = model.observe(batch, generator=torch.Generator().manual_seed(0))
        for t0 in (1, 5, 9):
            start = states[:, t0]
            assert start.context.shape[-2] == c and start.context_mask.shape == (3, c)
            actions = torch.randint(7, (3, horizon), generator=torch.Generator().manual_seed(t0))
            im = model.imagine(start, actions, generator=torch.Generator().manual_seed(1))
            assert im.states.context.shape[:2] == (3, horizon) and im.states.context.shape[-2] == c  # its last c steps
            stoch = torch.cat([states.stoch[:, :t0 + 1], im.states.stoch], 1)
            action = torch.cat([batch["action"][:, :t0], actions, torch.zeros(3, 1, dtype=torch.long)], 1)
            is_first = torch.cat([batch["is_first"][:, :t0 + 1], torch.zeros(3, horizon, dtype=torch.bool)], 1)
            hidden, _ = model.sequence(model.sequence_tokens(stoch, action, is_first), is_first)
            torch.testing.assert_close(im.states.deter, hidden[:, t0 + 1:], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(im.states.logits, model._latent_logits(model.prior_net(hidden[:, t0 + 1:])),
                                       atol=1e-5, rtol=1e-5)
            # the observed states up to the start are the same uncached pass
            torch.testing.assert_close(states.deter[:, :t0 + 1], hidden[:, :t0 + 1], atol=1e-5, rtol=1e-5)
        # continuing from an imagined state is the same as one longer rollout
        first = model.imagine(states[:, 9], actions[:, :4], generator=torch.Generator().manual_seed(2))
        more = model.imagine(first.states[:, -1], actions[:, 4:9], generator=torch.Generator().manual_seed(3))
        stoch = torch.cat([states.stoch, first.states.stoch, more.states.stoch], 1)
        action = torch.cat([batch["action"][:, :9], actions[:, :9], torch.zeros(3, 1, dtype=torch.long)], 1)
        is_first = torch.cat([batch["is_first"], torch.zeros(3, 9, dtype=torch.bool)], 1)
        hidden, _ = model.sequence(model.sequence_tokens(stoch, action, is_first), is_first)
        torch.testing.assert_close(more.states.deter, hidden[:, -5:], atol=1e-5, rtol=1e-5)


def test_attention_stays_in_the_episode_and_the_window():
    """A step's hidden state depends on the steps of its own episode within the context, and on nothing else."""
    torch.manual_seed(0)
    model = TransformerWorldModel(preset("tiny"), ObsSpec()).eval()
    c = model.config.context
    t = c + 6
    tokens = torch.randn(2, t, model.config.d_model)
    is_first = torch.zeros(2, t, dtype=torch.bool)
    is_first[0, 4] = True
    with torch.no_grad():
        base, _ = model.sequence(tokens, is_first)
        early = tokens.clone()
        early[:, :4] += torch.randn(2, 4, model.config.d_model)  # before row 0's boundary (row 1 has none)
        moved, _ = model.sequence(early, is_first)
    assert torch.equal(moved[0, 4:], base[0, 4:])  # masked across is_first
    assert not torch.allclose(moved[1, 4:c + 3], base[1, 4:c + 3])  # row 1: same episode, within the window
    assert torch.equal(moved[1, c + 3:], base[1, c + 3:])  # more than c - 1 steps back: out of the window
    assert not torch.allclose(moved[0, :4], base[0, :4])


def test_a_start_needs_its_context():
    model = TransformerWorldModel(preset("tiny"), ObsSpec())
    bare = LatentState(torch.zeros(2, 64), torch.zeros(2, 4, 8))
    with pytest.raises(ValueError, match="needs its context"):
        model.imagine(bare, torch.zeros(2, 3, dtype=torch.long))
    im = model.imagine(model.initial(2), torch.zeros(2, 3, dtype=torch.long))  # a fresh history
    assert im.states.deter.shape == (2, 3, 64) and im.states.context_mask[:, 0].sum() == 2


def test_imagination_gradients_reach_the_dynamics(random_batch):
    """With autograd on, the cache is written out of place: gradients flow through every imagined step."""
    model = TransformerWorldModel(preset("tiny"), ObsSpec())
    states, _ = model.observe(random_batch())
    im = model.imagine(states[:, -1].detach(), torch.ones(3, 4, dtype=torch.long))
    (im.states.deter[:, -1] * torch.randn(3, 64)).sum().backward()  # the last step reads the earlier ones via the cache
    for module in (model.token_in, model.blocks[0].qkv, model.prior_net):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
