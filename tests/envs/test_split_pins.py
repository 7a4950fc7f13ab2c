"""Splits stay put: a split's levels depend on its name, its factors and the splits version alone.

The pins below record the levels each built-in family serves (``reset(seed=k)``, oracle off):
a change to the sampler, a generator, the level hash or a YAML that moves any of them fails
here. If the change is meant, either bump the family's id version (keeping the old version
registered, its pins in ``SUPERSEDED_PINS``) when its generator changes, or bump ``version:`` in
``envs/shift/<family>.yaml`` when the splits change, and record the new pins (say so in the
change's notes: experiments on the old levels are not comparable).
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import shiftgrid.envs as sg
from shiftgrid.envs.shift import split as split_mod
from shiftgrid.envs.shift.split import Split, is_exposed, load_splits, sample_level

SHIFT_DIR = Path(split_mod.__file__).parent

# (level_seed, level_hash) of reset(seed=0, 1, 2), per family and split.
PINS: dict[str, dict[str, list[tuple[int, str]]]] = {
    "GoTo": {
        "train": [(913350807, '719a377b2e4d61e9'), (508082495, 'a2a86d55317b08d7'), (899339824, '91bfaebc876cb934')],
        "id": [(546162590181592448, '9b8a842ed19faf60'), (546162590181215018, '3b3c51c713e51365'), (546162590181579404, '05ac7377636a1310')],
        "observation/far": [(538737050903592450, 'e30779b66884cf58'), (538737050903215012, '33c4f16188668a82'), (538737050903579401, '284f6dd8fa8b1112')],
    },
    "Pickup": {
        "train": [(913350807, 'fdfe3e1dc438dbf9'), (508082495, '28e737ef8c739809'), (899339826, '117075eb9d117369')],
        "id": [(574509054633592449, 'c1a0f382974a5057'), (574509054633215013, '7a4fce4ca3287d57'), (574509054633579399, '563b7c70d8f6cebb')],
        "observation/far": [(530206371831592451, 'a080635d9df795a9'), (530206371831215015, '12c2fedad0d87471'), (530206371831579404, '719579b809d0f83b')],
    },
    "PutNext": {
        "train": [(913350808, '67071c4152004cb2'), (508082497, '42a22b1fcca4ce79'), (899339824, 'f7a928c4ef1b9a83')],
        "id": [(152420411494592452, 'a9ecfb16857f65f3'), (152420411494215014, '9427790d525cfe06'), (152420411494579400, '39db460edce6e1c2')],
        "observation/far": [(716317495535592449, 'df12eab90512e832'), (716317495535215013, '277c86ba2848f462'), (716317495535579399, '1f1e9f0513c52009')],
    },
    "DoorKey": {
        "train": [(913350807, '50fdf9d9b91f6afc'), (508082495, '14a096f1d70bed6d'), (899339824, '611bea33aa8f3fd5')],
        "id": [(968941049723592448, '5ebc5e7712c8b8cd'), (968941049723215015, 'a310e7d00704465d'), (968941049723579399, '69f4b939366fe1fc')],
        "observation/far": [(61849004744592454, '00a6c2456f4129cd'), (61849004744215012, 'b5ff7bfbff683e11'), (61849004744579399, 'd5fc8403d60a745e')],
    },
    "Maze": {
        "train": [(913350807, 'c7084666e2076d37'), (508082497, '5a2084a14d5f2e05'), (899339824, 'b647528750f1d935')],
        "id": [(831340291174592448, '680e48aa9460c8fe'), (831340291174215018, 'ed75c6e7a675f1c9'), (831340291174579400, '627a2d6e2ad7e56e')],
        "observation/far": [(634874478073592451, 'aeeddca730d34a97'), (634874478073215018, 'c3496cbf4a1b9670'), (634874478073579399, '1bfd2558dfed0c41')],
    },
    "Sequence": {
        "train": [(913350807, '40c7b2475ad5410a'), (508082495, 'e0680a5909d474ef'), (899339824, '3a13fdd3fb20d939')],
        "id": [(105311570079592448, '2e6057b3121ee616'), (105311570079215012, '738edd95ba572c7f'), (105311570079579402, '1793c8385567a705')],
        "observation/far": [(739126650110592449, 'ea33339629ac1781'), (739126650110215018, 'a814b59f747c4cea'), (739126650110579404, '37ecaf92e9219251')],
    },
}
# The same for the superseded ids (v0): their levels stay put too.
SUPERSEDED_PINS: dict[str, dict[str, list[tuple[int, str]]]] = {
    "GoTo": {
        "train": [(913350807, '3aaee7068cf48c04'), (508082495, 'a2a86d55317b08d7'), (899339824, '91bfaebc876cb934')],
        "id": [(546162590181592448, '9b8a842ed19faf60'), (546162590181215013, '10a47f7d89734718'), (546162590181579403, '3886f026e618c818')],
        "observation/far": [(538737050903592448, '66019353f179ed32'), (538737050903215013, 'c299fcc48bd2ee93'), (538737050903579403, 'f4bbafc69600058a')],
    },
    "Pickup": {
        "train": [(913350807, '0395c104edae57c7'), (508082495, '28e737ef8c739809'), (899339825, '35d4c4147cab45c1')],
        "id": [(574509054633592453, '955e74408fa01b76'), (574509054633215016, '5760696f5f4bfba1'), (574509054633579402, '0458e839063b601f')],
        "observation/far": [(530206371831592451, 'a080635d9df795a9'), (530206371831215015, '12c2fedad0d87471'), (530206371831579399, '3cec33f76014f178')],
    },
    "PutNext": {
        "train": [(913350808, '8bb4338dcfc96020'), (508082496, '673db211214e809a'), (899339825, '6516cf55a5ca3ca8')],
        "id": [(152420411494592450, 'ed96018c8f35af7f'), (152420411494215016, '8b944f75298c68f4'), (152420411494579400, '39db460edce6e1c2')],
        "observation/far": [(716317495535592449, '3569539275ed2b3e'), (716317495535215012, '3853622d7ccd31e3'), (716317495535579402, '10c4272ee62f9d07')],
    },
    # DoorKey-v0 and Maze-v0 differ from v1 in their episode limit only: the same levels.
    "DoorKey": {
        "train": [(913350807, '50fdf9d9b91f6afc'), (508082495, '14a096f1d70bed6d'), (899339824, '611bea33aa8f3fd5')],
        "id": [(968941049723592448, '5ebc5e7712c8b8cd'), (968941049723215015, 'a310e7d00704465d'), (968941049723579399, '69f4b939366fe1fc')],
        "observation/far": [(61849004744592454, '00a6c2456f4129cd'), (61849004744215012, 'b5ff7bfbff683e11'), (61849004744579399, 'd5fc8403d60a745e')],
    },
    "Maze": {
        "train": [(913350807, 'c7084666e2076d37'), (508082497, '5a2084a14d5f2e05'), (899339824, 'b647528750f1d935')],
        "id": [(831340291174592448, '680e48aa9460c8fe'), (831340291174215018, 'ed75c6e7a675f1c9'), (831340291174579400, '627a2d6e2ad7e56e')],
        "observation/far": [(634874478073592451, 'aeeddca730d34a97'), (634874478073215018, 'c3496cbf4a1b9670'), (634874478073579399, '1bfd2558dfed0c41')],
    },
    "Sequence": {
        "train": [(913350807, 'f1154c9201186f5e'), (508082496, '20bc4e61ed0ae815'), (899339825, '63efb2e9af7086cc')],
        "id": [(105311570079592448, '50025a5668d4818e'), (105311570079215012, '738edd95ba572c7f'), (105311570079579400, '58b2ef71a09524c0')],
        "observation/far": [(739126650110592449, 'ea33339629ac1781'), (739126650110215014, '23e0e63cdd25a54f'), (739126650110579399, '241978c88eb042e0')],
    },
}
FAMILIES = {f.name: f for f in sg.BUILTIN_FAMILIES}


def test_every_builtin_family_is_pinned():
    assert set(PINS) == set(FAMILIES)


@pytest.mark.parametrize("family, split_name", [(f, s) for f in PINS for s in PINS[f]])
def test_pinned_levels(family, split_name):
    env = gym.make(FAMILIES[family].env_id(), split=split_name, oracle=False)
    got = []
    for k in range(len(PINS[family][split_name])):
        info = env.reset(seed=k)[1]
        got.append((info["level_seed"], info["level_hash"]))
    env.close()
    assert got == PINS[family][split_name], (
        f"{family} {split_name}: the levels moved; if meant, bump the id's version or version: in {family.lower()}.yaml, and re-pin"
    )


SUPERSEDED = {f.name: f for f in sg.SUPERSEDED_FAMILIES}


def test_every_superseded_id_is_pinned():
    assert set(SUPERSEDED_PINS) == set(SUPERSEDED)


@pytest.mark.parametrize("family, split_name", [(f, s) for f in SUPERSEDED_PINS for s in SUPERSEDED_PINS[f]])
def test_superseded_ids_keep_their_levels(family, split_name):
    env = gym.make(SUPERSEDED[family].env_id(), split=split_name, oracle=False)
    got = [(info["level_seed"], info["level_hash"]) for info in (env.reset(seed=k)[1] for k in range(3))]
    env.close()
    assert got == SUPERSEDED_PINS[family][split_name]


def _spec(family: str) -> dict:
    return yaml.safe_load((SHIFT_DIR / f"{family.lower()}.yaml").read_text())


def _levels(family, split: Split, n: int = 2) -> list[tuple[int, str]]:
    """(seed, hash) of the levels at the first ``n`` seeds of the split's range (oracle off)."""
    out = []
    for i in range(n):
        s = sample_level(family, split, np.random.default_rng(0), level_seed=split.seed_start + i, oracle=False)
        out.append((s.level_seed, s.level_hash))
    return out


def _same_splits(a, b, names) -> None:
    for name in names:
        x, y = a[name], b[name]
        assert (x.seed_start, x.seed_count, dict(x.factors)) == (y.seed_start, y.seed_count, dict(y.factors)), name
        assert _levels(a.family, x) == _levels(b.family, y), name


@pytest.mark.parametrize("family", list(PINS))
def test_reordering_axes_and_factors_changes_no_split(family):
    spec = _spec(family)
    reordered = {
        "axes": {axis: dict(reversed(list(levels.items()))) for axis, levels in reversed(list(spec["axes"].items()))},
        "train": dict(reversed(list(spec["train"].items()))),
        "version": spec["version"],
    }
    fam = FAMILIES[family]
    before, after = load_splits(fam), load_splits(fam, reordered)
    assert list(after.axes) == list(reversed(before.axes))  # the order really changed
    assert set(after) == set(before)
    _same_splits(before, after, before.test_splits() + ["train"])


@pytest.mark.parametrize("family", ["GoTo", "Maze"])
def test_adding_an_axis_changes_no_other_split(family):
    spec = _spec(family)
    added = {**spec, "axes": {"extra": {"far": {"size": 12, "description": "a new axis, declared first"}}, **spec["axes"]}}
    fam = FAMILIES[family]
    before, after = load_splits(fam), load_splits(fam, added)
    assert after.axes[0] == "extra" and "extra/far" in after
    _same_splits(before, after, before.test_splits())
    new = after["extra/far"]
    for name in before.test_splits():
        old = before[name]
        assert new.seed_start + new.seed_count <= old.seed_start or old.seed_start + old.seed_count <= new.seed_start


@pytest.mark.parametrize("family", list(PINS))
def test_held_out_seed_ranges_are_disjoint(family):
    """Distinct held-out splits draw from distinct seed ranges (and, as ever, none from train's)."""
    splits = load_splits(FAMILIES[family])
    ranges = sorted((splits[n].seed_start, splits[n].seed_count, n) for n in splits.test_splits())
    for (a, count, name), (b, _, other) in zip(ranges, ranges[1:]):
        assert a + count <= b, f"{name} and {other} overlap"
    assert ranges[0][0] >= splits["train"].seed_start + splits["train"].seed_count


def test_the_splits_version_moves_held_out_levels_and_only_those():
    spec = _spec("GoTo")
    fam = FAMILIES["GoTo"]
    a, b = load_splits(fam, spec), load_splits(fam, {**spec, "version": spec["version"] + 1})
    assert b.version == a.version + 1
    assert (a["train"].seed_start, a["train"].seed_count) == (b["train"].seed_start, b["train"].seed_count)
    assert all(a[n].seed_start != b[n].seed_start for n in a.test_splits())


@pytest.mark.parametrize("family", [f for f in PINS if FAMILIES[f].exposure])
def test_exposure_changes_only_the_exposed_training_levels(family):
    """The level at an unexposed seed is the level drawn there without exposure; only exposed seeds change."""
    fam = FAMILIES[family]
    train = load_splits(fam)["train"]

    def draw(seed: int, exposure: float):
        return sample_level(fam, train, np.random.default_rng(0), level_seed=seed, oracle=False, exposure=exposure)

    exposed = same = 0
    for k in range(300):
        mixed, plain = draw(k, 0.05), draw(k, 0.0)
        assert mixed.exposed == is_exposed(mixed.level_seed, 0.05)
        if mixed.exposed:
            exposed += 1
            assert all(getattr(mixed.factors, f) == v for f, v in fam.exposure.items())
            continue
        # an exposed seed that was rejected moves the draw on to the next seed, whose level is unchanged
        unexposed = plain if plain.level_seed == mixed.level_seed else draw(mixed.level_seed, 0.0)
        assert (mixed.level_seed, mixed.level_hash) == (unexposed.level_seed, unexposed.level_hash), f"level seed {k}"
        same += (mixed.level_seed, mixed.level_hash) == (plain.level_seed, plain.level_hash)
    assert 3 <= exposed <= 35  # about 5% of 300
    assert same >= 300 - 3 * exposed


def test_exposure_coin_is_its_own_stream():
    coins = [is_exposed(k, 0.5) for k in range(2000)]
    assert 900 < sum(coins) < 1100
    assert coins == [is_exposed(k, 0.5) for k in range(2000)]  # a function of the seed alone
    assert not any(is_exposed(k, 0.0) for k in range(100)) and all(is_exposed(k, 1.0) for k in range(100))


def test_a_repeated_held_out_sample_is_the_same_level_generated_afresh():
    splits = load_splits(FAMILIES["PutNext"])
    split = splits["size/far"]
    first = sample_level(splits.family, split, np.random.default_rng(0), level_seed=split.seed_start + 7)
    again = sample_level(splits.family, split, np.random.default_rng(0), level_seed=split.seed_start + 7)
    assert (again.level_seed, again.level_hash, again.plan, again.factors) == (
        first.level_seed, first.level_hash, first.plan, first.factors)
    assert again.level is not first.level and again.level.grid is not first.level.grid
