"""The one environment class behind every shiftgrid id: a minigrid env whose levels come from a split.

Observations are minigrid's: ``image`` (7x7x3 uint8 codes), ``direction`` and ``mission`` (a
``Text`` space, so sync and async vector envs work). ``info`` carries ``success``,
``level_hash``, ``level_seed``, ``optimal_steps``, ``optimal_return`` and ``optimal_exact``.

The observation axis (``palette``, ``view``) reaches every view of the level: the symbolic
``image``, ``render()``/``get_frame`` (colours, and the highlighted view), the agent's point of
view and minigrid's ``FullyObsWrapper``, ``RGBImgObsWrapper`` and ``RGBImgPartialObsWrapper``.
The grid is the largest a split can produce (``Family.largest_grid``), smaller levels at its
top left with walls around them, so full and pixel observations keep one shape per split.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/GoTo-v1", split="size/far")
    >>> obs, info = env.reset(seed=1)
    >>> obs["image"].shape, sorted(k for k in info if k.startswith("optimal"))
    ((7, 7, 3), ['optimal_exact', 'optimal_return', 'optimal_steps'])
"""

from __future__ import annotations

import operator
from typing import Any, Mapping, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.actions import Actions
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import WorldObj
from minigrid.envs.babyai.core.verifier import Instr
from minigrid.minigrid_env import MiniGridEnv

from shiftgrid.envs.babyai_compat import babyai_instrs, update_positions
from shiftgrid.envs.family import Family
from shiftgrid.envs.keywords import check_max_steps, split_with_factors
from shiftgrid.envs.level import playable_copy
from shiftgrid.envs.mission import MissionProgress
from shiftgrid.envs.oracle import Plan, solve_from
from shiftgrid.envs.observation import VIEW, VIEWS, CodedGrid, egocentric_view, palette_array, view_mask
from shiftgrid.envs.spaces import MissionText
from shiftgrid.envs.registration import resolve_splits
from shiftgrid.envs.shift.split import Sample, SplitError, SplitSet, sample_level

MISSION_MAX_LENGTH = 256
MISSION_CHARSET = "abcdefghijklmnopqrstuvwxyz ,"


def _no_mission() -> str:
    return ""


class ShiftGridEnv(MiniGridEnv):
    """A minigrid environment drawing its levels from one split of one family.

    Args:
        family: the :class:`~shiftgrid.envs.family.Family` to generate levels from, or its import
            path ``"module:name"`` (what registered specs hold, so they stay JSON).
        split: split name (``train``, ``id``, ``<axis>/<id|near|far>``).
        splits: the family's splits: a :class:`SplitSet`, a YAML path or a mapping in the YAML
            layout (registration passes what it was given); default: the family's YAML.
        exposure: on ``train``, the fraction of levels drawn as held-out combinations
            (families with a composition axis; e.g. 0, 0.01, 0.05, 0.25).
        oracle: compute the optimal plan at reset (needed for ``optimal_*`` in ``info``).
        max_steps: episode limit (a positive integer); default: the family's, which depends on the level's factors.
        **kwargs: factor values replacing the split's (``size=9``, ``num_distractors=[3, 4]``),
            validated as split YAML is; and minigrid's ``render_mode``, ``tile_size``, ...
    """

    grid: CodedGrid
    carrying: WorldObj | None  # type: ignore[assignment]  # minigrid's __init__ sets None, which mypy takes as its type

    def __init__(
        self,
        family: Family | str,
        split: str = "train",
        splits: SplitSet | str | Mapping | None = None,
        exposure: float = 0.0,
        oracle: bool = True,
        max_steps: int | None = None,
        **kwargs: Any,
    ):
        self.family, self.splits = resolve_splits(family, splits)
        self.split, minigrid_kwargs = split_with_factors(self.family, self.splits[split], kwargs)
        max_steps = check_max_steps(max_steps)
        family = self.family
        if not 0.0 <= float(exposure) <= 1.0:
            raise SplitError(f"exposure={exposure!r} must be in [0, 1] (e.g. 0, 0.01, 0.05, 0.25)")
        if exposure and (family.exposure is None or self.split.held_out):
            where = "the train split" if family.exposure else f"families with a composition axis, not {family.name}"
            raise SplitError(f"exposure={exposure!r} applies only to {where}; got split {split!r}")
        self.exposure = float(exposure)
        self.use_oracle = oracle
        self.max_steps_override = max_steps
        width, height = self._largest_grid()
        super().__init__(
            mission_space=MissionSpace(mission_func=_no_mission),
            width=width,
            height=height,
            max_steps=max_steps or 100,
            see_through_walls=False,
            agent_view_size=VIEW,
            **minigrid_kwargs,
        )
        self.observation_space = spaces.Dict(
            {
                "image": cast(spaces.Dict, self.observation_space)["image"],
                "direction": spaces.Discrete(4),
                "mission": MissionText(max_length=MISSION_MAX_LENGTH, min_length=0, charset=MISSION_CHARSET),
            }
        )
        self.sample: Sample | None = None
        # Fail at construction, not at the first reset, if the split cannot produce a level.
        sample_level(family, self.split, np.random.default_rng(0), exposure=self.exposure, oracle=False)

    # -- level installation -------------------------------------------------------------------
    def _largest_grid(self) -> tuple[int, int]:
        """The largest grid this env's split (with its exposure overrides) can produce: the env's grid size."""
        values = dict(self.split.factors)
        sizes = [self.family.largest_grid(values)]
        if self.exposure and self.family.exposure is not None:  # __init__ allows exposure only then
            sizes.append(self.family.largest_grid({**values, **self.family.exposure}))
        return max(w for w, _ in sizes), max(h for _, h in sizes)

    def reset(  # type: ignore[override]  # minigrid annotates it with gymnasium's unbound ObsType
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw the next level (``options={"level_seed": s}`` names it) and install it with minigrid's reset.

        The level is drawn here, where the reset's options are, from ``np_random`` seeded first as
        minigrid's reset would; :meth:`_gen_grid` then installs ``self.sample``.
        """
        gym.Env.reset(self, seed=seed)
        self.sample = sample_level(
            self.family,
            self.split,
            self.np_random,
            exposure=self.exposure,
            level_seed=(options or {}).get("level_seed"),
            oracle=self.use_oracle,
            max_steps=self.max_steps_override,
        )
        obs, _ = super().reset()  # np_random stays as seeded above
        return obs, self._info(success=False)

    def _gen_grid(self, width: int, height: int) -> None:
        s = self.sample
        assert s is not None, "reset() draws the level first"
        level, f = s.level, s.factors
        self.level = level
        if level.grid.width > width or level.grid.height > height:
            raise ValueError(
                f"{self.family.name} generated a {level.grid.width}x{level.grid.height} level from {f!r}, larger than "
                f"the {width}x{height} its Family.grid_size allows for split {self.split.name!r}"
            )
        grid, self.objects = playable_copy(level)  # play changes these copies, never the level
        self.grid = CodedGrid.from_grid(grid, width, height, palette_array(f.palette))
        self.width, self.height = self.grid.width, self.grid.height
        self.agent_pos, self.agent_dir = (level.agent_pos[0], level.agent_pos[1]), level.agent_dir
        self.mission = level.mission_text
        self.max_steps = self.max_steps_override or self.family.max_steps(f)
        self.progress = MissionProgress(level.mission)
        self.slip, self.view = f.slip, f.view
        self.palette = f.palette
        self._instrs = babyai_instrs(self)

    def _info(self, success: bool) -> dict[str, Any]:
        s = self.sample
        assert s is not None, "reset() draws the level first"
        info: dict[str, Any] = {"success": success, "level_hash": s.level_hash, "level_seed": s.level_seed}
        if s.plan is not None:
            info["optimal_steps"] = s.plan.steps
            info["optimal_return"] = 1.0 - 0.9 * (s.plan.steps / self.max_steps)
            info["optimal_exact"] = s.plan.exact
        return info

    @property
    def optimal_actions(self) -> tuple[int, ...]:
        """A shortest plan for the current level (its first action is for the reset state).

        From a later state of the episode, :meth:`optimal_plan_from_here` plans anew.
        """
        assert self.sample is not None, "reset() draws the level first"
        plan = self.sample.plan
        if plan is None:
            raise RuntimeError("this env was made with oracle=False")
        return plan.actions

    def optimal_plan_from_here(self) -> Plan:
        """The optimal :class:`~shiftgrid.envs.oracle.Plan` from the episode's current state.

        See :func:`shiftgrid.envs.oracle.solve_from` (pose, carried object, moved or removed
        objects, doors and mission progress are read from this env).

        Example:
            >>> import gymnasium as gym, shiftgrid.envs
            >>> env = gym.make("shiftgrid/Pickup-v1"); _, info = env.reset(seed=0)
            >>> _ = env.step(2)
            >>> len(env.unwrapped.optimal_plan_from_here().actions) <= info["optimal_steps"] + 1
            True
        """
        return solve_from(self)

    # -- observation and dynamics ---------------------------------------------------------------
    def gen_obs(self) -> dict[str, Any]:
        image = egocentric_view(self.grid, self.agent_pos, self.agent_dir, self.carrying, self.view)
        return {"image": image, "direction": self.agent_dir, "mission": self.mission}

    def gen_obs_grid(self, agent_view_size: int | None = None) -> tuple[Grid, np.ndarray]:
        """minigrid's view grid and visibility mask, cells beyond the level's ``view`` unseen.

        Every minigrid path that shows the agent's view goes through here: the highlighted
        cells of ``render()``, the agent's point of view (``agent_pov``, ``RGBImgPartialObsWrapper``).
        """
        grid, vis = super().gen_obs_grid(agent_view_size)
        if self.view < grid.width:
            hidden = ~view_mask(self.view, grid.width)
            vis = vis & ~hidden
            for i, j in zip(*np.nonzero(hidden)):
                grid.set(int(i), int(j), None)
        return grid, vis

    def set_observation(self, palette: str | None = None, view: int | None = None) -> None:
        """Observe the current level through ``palette`` and ``view`` until the next reset (None: unchanged).

        The level and its dynamics stay as they are; e.g. ``set_observation("identity", 7)``
        shows an observation-shifted level unshifted.

        Example:
            >>> import gymnasium as gym, shiftgrid.envs
            >>> env = gym.make("shiftgrid/GoTo-v1", split="observation/far", oracle=False).unwrapped
            >>> shifted = env.reset(seed=0)[0]["image"]
            >>> env.set_observation("identity", 7)
            >>> bool((env.gen_obs()["image"] == shifted).all())
            False
        """
        if palette is not None:
            self.grid.set_palette(palette_array(palette))
            self.palette = palette
        if view is not None:
            if view not in VIEWS:
                raise ValueError(f"view={view!r} is not valid; valid: {', '.join(map(str, VIEWS))}")
            self.view = view

    def step(  # type: ignore[override]  # minigrid annotates it with gymnasium's unbound ObsType
        self, action: Any
    ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        given = action
        try:  # integers and 0-d integer arrays; not floats, strings or None
            action = operator.index(action.item() if isinstance(action, np.ndarray) and action.ndim == 0 else action)
        except TypeError:
            action = -1
        if not 0 <= action < 7:
            raise ValueError(f"action {given!r} is not valid; valid: an integer 0..6 (minigrid's Actions)")
        self.step_count += 1
        if action == Actions.forward and self.slip > 0 and self.np_random.random() < self.slip:
            action = int(Actions.left) if self.np_random.random() < 0.5 else int(Actions.right)
        pre_carrying = self.carrying
        fx, fy = self.front_pos
        fwd = self.grid.get(fx, fy)
        failed = False
        if action == Actions.left:
            self.agent_dir = (self.agent_dir - 1) % 4
        elif action == Actions.right:
            self.agent_dir = (self.agent_dir + 1) % 4
        elif action == Actions.forward:
            if fwd is None or fwd.can_overlap():
                self.agent_pos = (int(fx), int(fy))
                failed = fwd is not None and fwd.type == "lava"
        elif action == Actions.pickup:
            if fwd is not None and fwd.can_pickup() and self.carrying is None:
                self.carrying = fwd
                fwd.cur_pos = np.array([-1, -1])  # type: ignore[assignment]  # minigrid's own step stores arrays too
                self.grid.set(fx, fy, None)
        elif action == Actions.drop:
            if fwd is None and self.carrying is not None:
                self.grid.set(fx, fy, self.carrying)
                self.carrying.cur_pos = np.array([fx, fy])  # type: ignore[assignment]  # as above
                self.carrying = None
                if self._instrs is not None:
                    update_positions(self._instrs)
        elif action == Actions.toggle and fwd is not None:
            fwd.toggle(self, (fx, fy))
            self.grid.refresh(fx, fy)
        success = not failed and self.progress.update(self, self.objects, action, pre_carrying)
        reward = self._reward() if success else 0.0
        terminated = success or failed
        truncated = not terminated and self.step_count >= self.max_steps
        if self.render_mode == "human":
            self.render()
        return self.gen_obs(), reward, terminated, truncated, self._info(success)

    # -- BabyAI compatibility -------------------------------------------------------------------
    @property
    def instrs(self) -> Instr:
        """The mission as BabyAI instruction objects (for ``BabyAIBot`` and BabyAI's verifier).

        Built and reset at every reset; raises ``AttributeError`` where the mission has no
        BabyAI equivalent (e.g. "reach the goal").
        """
        if self._instrs is None:
            raise AttributeError(f"the mission {self.mission!r} has no BabyAI instruction equivalent")
        return self._instrs

    def room_from_pos(self, x: int, y: int) -> None:
        """BabyAI's object descriptions ask for the agent's room; shiftgrid levels have no room structure."""
        return None
