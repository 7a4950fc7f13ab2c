"""Sequence family: generated levels, their splits, the oracle, the env and BabyAI's verifier agree."""

from __future__ import annotations

import dataclasses
import functools
import pickle
from typing import NamedTuple

import numpy as np
import pytest

from minigrid.core.actions import Actions

from shiftgrid.envs.babyai_compat import to_instrs, update_positions
from shiftgrid.envs.env import MISSION_MAX_LENGTH, ShiftGridEnv
from shiftgrid.envs.factors import FactorError, Factors
from shiftgrid.envs.families.common import HELDOUT_COMBOS, SEEN_COMBOS
from shiftgrid.envs.families.sequence import FAMILY, HELDOUT_VERB_PAIRS, SequenceFactors
from shiftgrid.envs.language import VOCAB, tokenize
from shiftgrid.envs.level import Level, LevelError, level_hash
from shiftgrid.envs.mission import Mission, MissionProgress
from shiftgrid.envs.oracle import Plan, solve
from shiftgrid.envs.shift.split import hash_extra, is_reserved, load_splits

SPLITS = load_splits(FAMILY)
NAMES = ["train", "id"] + [n for n in SPLITS if "/" in n and not n.endswith("/id")]
LEVELS_PER_SPLIT = 200
DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))


class Drawn(NamedTuple):
    seed: int
    factors: Factors
    level: Level
    plan: Plan
    hash: str


@functools.lru_cache(maxsize=None)
def drawn(name: str) -> tuple[Drawn, ...]:
    """The first levels of a split's seed range, drawn as the sampler's first try draws them."""
    split, out = SPLITS[name], []
    for seed in range(split.seed_start, split.seed_start + LEVELS_PER_SPLIT):
        rng = np.random.default_rng(seed)
        f = split.draw_factors(FAMILY.factors, rng)
        level = FAMILY.generate(f, rng)
        out.append(Drawn(seed, f, level, solve(level, slip=f.slip), level_hash(level, hash_extra(f))))
    return tuple(out)


def admitted(name: str) -> list[Drawn]:
    """Drawn levels in the split's hash bucket: the env's sampler, given their seed, shows the same level."""
    return [d for d in drawn(name) if is_reserved(d.hash) == SPLITS[name].held_out]


def named(level: Level) -> list[tuple[str, str, str]]:
    """(verb, colour, type) of every clause."""
    return [(c.verb, level.objects[c.target].color, level.objects[c.target].type) for s in level.mission.steps for c in s]


def held_out_pairs(level: Level) -> list[tuple[str, str]]:
    return [(v, t) for v, _, t in named(level) if (v, t) in HELDOUT_VERB_PAIRS]


def named_combos(level: Level) -> list[tuple[str, str]]:
    return [(c, t) for _, c, t in named(level) if t != "door"]


def expressible(mission: Mission) -> bool:
    return len(mission.steps) <= 2 and all(len(s) <= 2 for s in mission.steps)


def reset_to(env: ShiftGridEnv, d: Drawn) -> dict:
    _, info = env.reset(seed=0, options={"level_seed": d.seed})
    assert info["level_seed"] == d.seed and info["level_hash"] == d.hash
    return info


def replay(env: ShiftGridEnv, actions, *trackers: MissionProgress) -> tuple[int | None, list[int | None]]:
    """Step ``actions``; return the step at which the env succeeded and each tracker completed (or None)."""
    u = env.unwrapped
    success, done = None, [None] * len(trackers)
    for t, a in enumerate(actions):
        pre = u.carrying
        _, _, terminated, truncated, info = env.step(a)
        for i, tr in enumerate(trackers):
            if done[i] is None and tr.update(u, u.objects, a, pre):
                done[i] = t
        if info["success"]:
            success = t
        if terminated or truncated:
            break
    return success, done


# -- the oracle and the env ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_oracle_solves_every_level_within_the_episode_limit(name):
    for d in drawn(name):
        assert 0 < d.plan.steps <= FAMILY.max_steps(d.factors), (d.seed, d.level.mission_text)


class StepVerifier:
    """BabyAI's verifier for a mission of any number of steps: one BabyAI instruction per step, in order.

    BabyAI sequences at most two steps (``BeforeInstr``), so longer missions have no BabyAI tree
    (``env.instrs`` raises). This chains BabyAI's own per-step instructions with ``BeforeInstr``'s
    rule: the action that completes a step is also verified by the next one. All are reset on the
    start state, before any step, as ``BeforeInstr`` resets both of its parts; a drop refreshes the
    positions they track, as the env does for its own tree (``update_positions``).
    """

    def __init__(self, env):
        self.parts = [to_instrs(Mission((step,)), env.objects) for step in env.level.mission.steps]
        for part in self.parts:
            part.reset_verifier(env)
        self.current = 0

    def verify(self, action) -> str:
        """Verify ``action`` after the env took it."""
        if action == Actions.drop:
            for part in self.parts:
                update_positions(part)
        while True:
            verdict = self.parts[self.current].verify(action)
            if verdict != "success" or self.current == len(self.parts) - 1:
                return verdict
            self.current += 1


@pytest.mark.parametrize("name", NAMES)
def test_oracle_plan_replays_in_the_env_and_babyai_agrees(name):
    env = ShiftGridEnv(FAMILY, split=name)
    u = env.unwrapped
    levels, whole_trees = admitted(name), 0
    for d in levels:
        info = reset_to(env, d)
        assert info["optimal_steps"] == d.plan.steps
        # before any step: BabyAI reads the start
        if expressible(d.level.mission):
            instrs = u.instrs
        else:
            instrs = None
            with pytest.raises(AttributeError, match="no BabyAI instruction equivalent"):
                u.instrs
        by_step = StepVerifier(u)
        verdicts, step_verdicts, total = [], [], 0.0
        for t, a in enumerate(d.plan.actions):
            _, reward, terminated, truncated, info = env.step(a)
            total += reward
            step_verdicts.append(by_step.verify(a))
            if instrs is not None:
                verdicts.append(instrs.verify(a))
            assert terminated == (t == len(d.plan.actions) - 1) and not truncated
        assert info["success"]
        assert reward == pytest.approx(info["optimal_return"], rel=1e-12) and total == reward
        assert step_verdicts[-1] == "success" and set(step_verdicts[:-1]) <= {"continue"}, d.level.mission_text
        if instrs is not None:
            whole_trees += 1
            assert verdicts == step_verdicts, d.level.mission_text  # the chain is BabyAI's own rule where both exist
    assert levels and whole_trees > 0  # on every split, the chain is held to BabyAI's own trees where they exist


def test_babyai_instructions_read_like_the_mission():
    env = ShiftGridEnv(FAMILY, split="train")
    for d in admitted("train")[:40]:
        reset_to(env, d)
        surface = env.unwrapped.instrs.surface(env.unwrapped)
        assert surface == d.level.mission_text


# -- clause order -----------------------------------------------------------------------------------------


def test_a_later_step_done_first_does_not_complete_the_mission():
    env = ShiftGridEnv(FAMILY, split="train")
    tested = 0
    for d in admitted("train"):
        steps = d.level.mission.steps
        if len(steps) < 2:
            continue
        backwards = Mission(steps[::-1])
        plan = solve(dataclasses.replace(d.level, mission=backwards))
        reset_to(env, d)
        success, (first_done, backwards_done) = replay(
            env, plan.actions, MissionProgress(Mission(steps[:1])), MissionProgress(backwards)
        )
        if success is not None:  # the first step was done on the way, by chance: the order was kept
            assert first_done is not None and first_done <= success
            continue
        assert backwards_done == len(plan.actions) - 1  # the plan did the later step, then the first
        assert env.unwrapped.progress.step == (0 if first_done is None else 1)
        tested += 1
    assert tested >= 20


def test_and_clauses_complete_in_either_order():
    env = ShiftGridEnv(FAMILY, split="train")
    tested = 0
    for d in admitted("train"):
        steps = d.level.mission.steps
        k = next((i for i, s in enumerate(steps) if len(s) == 2), None)
        if k is None:
            continue
        a, b = steps[k]
        for order in (((a,), (b,)), ((b,), (a,))):
            ordered = Mission(steps[:k] + order + steps[k + 1 :])
            plan = solve(dataclasses.replace(d.level, mission=ordered))
            reset_to(env, d)
            success, (ordered_done,) = replay(env, plan.actions, MissionProgress(ordered))
            assert success is not None and (ordered_done is None or success <= ordered_done), d.level.mission_text
        tested += 1
    assert tested >= 20


# -- splits ------------------------------------------------------------------------------------------------


def test_training_never_asks_held_out_combinations_but_sees_every_primitive():
    pairs: set[tuple[str, str]] = set()
    for d in drawn("train"):
        assert not held_out_pairs(d.level), d.level.mission_text
        objects = [(o.color, o.type) for o in d.level.objects if o.type != "door"]
        assert all(c in SEEN_COMBOS for c in objects), d.level.mission_text
        pairs |= {(v, t) for v, _, t in named(d.level)}
    verbs, types = {v for v, _ in pairs}, {t for _, t in pairs}
    assert verbs == {"goto", "open", "pickup"} and types == {"ball", "box", "key", "door"}
    asked = {("goto", "ball"), ("goto", "box"), ("goto", "door"), ("open", "door"), ("pickup", "ball"), ("pickup", "key")}
    assert pairs == asked


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("composition/")])
def test_other_splits_ask_only_seen_combinations(name):
    for d in drawn(name):
        assert not held_out_pairs(d.level) and all(c in SEEN_COMBOS for c in named_combos(d.level))


def test_composition_near_names_only_held_out_colour_type_targets():
    for d in drawn("composition/near"):
        combos = named_combos(d.level)
        assert combos and all(c in HELDOUT_COMBOS for c in combos), d.level.mission_text
        others = [(o.color, o.type) for o in d.level.objects if o.type != "door"]
        assert all(c in SEEN_COMBOS for c in others if c not in combos)


def test_composition_far_always_asks_a_held_out_verb_type_pair():
    seen = set()
    for d in drawn("composition/far"):
        pairs = held_out_pairs(d.level)
        assert pairs, d.level.mission_text
        assert all(c in SEEN_COMBOS for c in named_combos(d.level))
        seen |= set(pairs)
    assert seen == set(HELDOUT_VERB_PAIRS)


def test_exposure_draws_held_out_training_levels():
    env = ShiftGridEnv(FAMILY, split="train", exposure=1.0, oracle=False)
    for seed in range(20):
        env.reset(seed=seed)
        level = env.unwrapped.level
        combos = named_combos(level)
        assert held_out_pairs(level) and combos and all(c in HELDOUT_COMBOS for c in combos)


def test_instruction_axis_lengthens_missions():
    def shape(name):
        return {(d.level.mission.num_clauses, len(d.level.mission.steps)) for d in drawn(name)}

    assert {n for n, _ in shape("train")} == {1, 2} and max(s for _, s in shape("train")) == 2
    assert {n for n, _ in shape("instructions/near")} == {3}
    assert {n for n, _ in shape("instructions/far")} == {4, 5} and max(s for _, s in shape("instructions/far")) == 5


def test_every_split_has_a_description():
    for name, split in SPLITS.items():
        assert split.description, name


# -- level structure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_levels_are_well_formed(name):
    doors_per_layout = {"room": 0, "split": 1, "rooms": 3}
    for d in drawn(name):
        level, text = d.level, d.level.mission_text
        steps = level.mission.steps
        # the text says the mission, in vocabulary words
        assert all(w in VOCAB for w in tokenize(text)), text
        assert text.count(", then ") == len(steps) - 1 and text.count(" and ") == sum(len(s) - 1 for s in steps)
        # every object and door is uniquely described; doors sit in internal walls only
        descriptions = [(o.color, o.type) for o in level.objects]
        assert len(set(descriptions)) == len(descriptions)
        doors = [o for o in level.objects if o.type == "door"]
        assert len(doors) == doors_per_layout[d.factors.layout]
        w, h = level.grid.width, level.grid.height
        assert all(0 < o.cur_pos[0] < w - 1 and 0 < o.cur_pos[1] < h - 1 for o in doors)
        assert not any(o.is_open or o.is_locked for o in doors)
        # one pickup at most, as the very last clause; open only doors; targets differ within a step
        clauses = [c for s in steps for c in s]
        assert all(c.verb != "pickup" for c in clauses[:-1])
        assert all(level.objects[c.target].type == "door" for c in clauses if c.verb == "open")
        assert all(len({c.target for c in s}) == len(s) for s in steps)
        assert all(not {c.target for c in s} & {c.target for c in p} for p, s in zip(steps, steps[1:]))
        # the mission does not start done: the agent faces no target of the first step
        x, y = level.agent_pos
        front = (x + DIRS[level.agent_dir][0], y + DIRS[level.agent_dir][1])
        assert all(tuple(level.objects[c.target].cur_pos) != front for c in steps[0])


def test_babyai_refuses_missions_longer_than_two_steps():
    long = next(d for d in drawn("instructions/far") if len(d.level.mission.steps) > 2)
    with pytest.raises(ValueError, match="at most two steps"):
        to_instrs(long.level.mission, long.level.objects)


# -- factors and family ------------------------------------------------------------------------------------


def test_family_pickles_and_episode_limit_grows_with_clauses():
    assert pickle.loads(pickle.dumps(FAMILY)) == FAMILY
    limits = [FAMILY.max_steps(SequenceFactors(num_clauses=n)) for n in range(1, 7)]
    assert limits == sorted(set(limits))


def test_factor_errors_name_the_valid_values():
    with pytest.raises(FactorError, match=r"num_clauses=7 is out of range; valid: 1\.\.6"):
        SequenceFactors(num_clauses=7)
    with pytest.raises(FactorError, match="verb_pairs='never'.*one of: seen, heldout"):
        SequenceFactors(verb_pairs="never")


def test_impossible_layout_raises_a_level_error():
    with pytest.raises(LevelError, match="layout='rooms'.*at least 7"):
        FAMILY.generate(SequenceFactors(size=6, layout="rooms"), np.random.default_rng(0))


def test_the_largest_missions_are_generated_and_solved():
    rng = np.random.default_rng(0)
    for layout in ("room", "split", "rooms"):
        f = SequenceFactors(size=9, num_clauses=6, num_distractors=2, layout=layout,
                            targets="heldout", verb_pairs="heldout")
        level = FAMILY.generate(f, rng)
        assert level.mission.num_clauses == 6 and held_out_pairs(level)
        assert len(level.mission_text) <= MISSION_MAX_LENGTH
        assert solve(level).steps <= FAMILY.max_steps(f)
