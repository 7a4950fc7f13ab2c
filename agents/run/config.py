"""Run configuration: typed dataclasses, YAML in and out, and layered overrides.

:class:`RunConfig` is the base every run shares (learners, world-model trainers, sweeps): the
environment, split, seed, device, run directory, version, periodic evaluation and target.
:class:`TrainConfig` adds what a learner needs. Nested sections are dataclasses, parsed and
checked generically (:func:`from_mapping`), so a new section is a field, not parsing code.

A run's configuration is resolved in layers, each overriding the one before:
defaults (:class:`TrainConfig`) < algorithm preset < algorithm-family preset < ``--config``
file < ``--set key=value`` (dotted keys reach into nested mappings). The resolved config is
saved as ``config.yaml`` in the run directory, with the shiftgrid version that wrote it.

Example:
    >>> cfg = {"algo": "ppo", "hyperparams": {"n_steps": 128}}
    >>> cfg = merge(cfg, parse_overrides(["hyperparams.learning_rate=3e-4", "eval.episodes=10"]))
    >>> config = TrainConfig.from_dict(cfg)
    >>> config.hyperparams, config.eval.episodes
    ({'n_steps': 128, 'learning_rate': 0.0003}, 10)
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from shiftgrid.agents.run.errors import ConfigError
from shiftgrid.agents.run.registry import check_learner
from shiftgrid.envs.teacher.advice import AdviceConfig

#: First reset seed of the evaluations during training (checkpoint selection); ``shiftgrid
#: evaluate`` starts at 0, so the levels a checkpoint was chosen on are not the levels it is scored on.
VALIDATION_SEED = 1_000_000
#: The training vector envs (``TrainConfig.vec_env``).
VEC_ENVS = ("dummy", "subproc", "tensor")
#: Where evaluation episodes run: ``auto`` (the tensor engine wherever it plays a split as the minigrid env would,
#: else the minigrid env), ``engine``, ``minigrid`` (:mod:`shiftgrid.agents.evaluation.engine_episodes`).
EVAL_BACKENDS = ("auto", "engine", "minigrid")


def shiftgrid_version() -> str:
    """The installed shiftgrid version (written into every config and checkpoint)."""
    return importlib.metadata.version("shiftgrid")


@dataclass
class EvalConfig:
    """Periodic evaluation on held-out splits during training."""

    freq: int = 50_000
    """Environment steps between evaluations (0: never, not even at the end)."""
    episodes: int = 20
    """Episodes per split at each evaluation."""
    splits: str | list = "all"
    """``all`` (``id`` and every ``<axis>/near|far``) or a list of split names."""
    seed: int = VALIDATION_SEED
    """First validation seed: every evaluation replays the same held-out levels, none of which
    ``shiftgrid evaluate`` uses by default (it starts at seed 0)."""
    n_envs: int = 4
    """Environments stepped side by side during evaluation."""
    render: bool = True
    """Log one rendered episode per evaluated split to TensorBoard as a grid of frames."""
    deterministic: bool = True
    """Take the most likely action (False: sample from the policy, seeded)."""
    backend: str = "auto"
    """Where episodes run: ``auto`` (the tensor engine wherever it plays a split as the minigrid env would, all of a
    split's episodes at once; else the minigrid env, ``n_envs`` side by side), ``engine`` or ``minigrid``."""


@dataclass
class TargetConfig:
    """A training-success target: the steps and wall-clock a run takes to reach it are recorded.

    The target is met at the first step where the success rate over the last ``episodes``
    finished training episodes (a full window) is at least ``success``; episodes in which a
    teacher advised the learner are left out (the target is the learner's alone). The run then writes
    ``target.json`` and logs ``target/steps`` and ``target/wall_s``; with ``stop`` it also ends
    there, as if its steps were done.
    """

    success: float | None = None
    """Success rate to reach, in (0, 1] (None: no target)."""
    episodes: int = 1000
    """Training episodes the success rate is taken over."""
    stop: bool = False
    """End the run once the target is met."""


@dataclass
class TeacherConfig:
    """A curriculum teacher choosing every training level (``shiftgrid train --teacher NAME --teacher-set key=value``)."""

    name: str | None = None
    """A curriculum teacher (:data:`~shiftgrid.envs.teacher.curriculum.TEACHERS`): ``uniform``, ``tscl``, ``plr``,
    ``plr-robust``, ``learnability``, ``regret`` (None: no teacher, levels drawn by the envs themselves)."""
    options: dict = field(default_factory=dict)
    """The teacher's options (e.g. ``temperature``, ``replay_prob``, ``tier``)."""

    def check(self) -> None:
        """Raise on an unknown teacher or option (:class:`ConfigError`), or a tier below its needs (``KnowledgeError``)."""
        if self.name is None:
            if self.options:
                raise ConfigError(f"teacher.options {self.options} given without teacher.name")
            return
        from shiftgrid.envs.teacher.curriculum import CurriculumError, check_teacher

        try:
            check_teacher(self.name, self.options)
        except CurriculumError as e:
            raise ConfigError(str(e)) from None


T = typing.TypeVar("T")
R = typing.TypeVar("R", bound="RunConfig")


@dataclass
class RunConfig:
    """What every run has: environment, split, seed, device, run directory, version, evaluation, target.

    Example:
        >>> RunConfig.from_dict({"seed": 3, "eval": {"episodes": 5}}).eval.episodes
        5
    """

    env: str = "shiftgrid/GoTo-v1"
    """A shiftgrid, minigrid or BabyAI environment id."""
    split: str | None = None
    """Training split of a shiftgrid id (None: ``train``); must be None for ids without splits."""
    seed: int = 0
    """Seed of the model and of the training environments."""
    device: str = "auto"
    """Torch device: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1``..."""
    run_dir: str | None = None
    """Where config.yaml, checkpoints/ and tb/ go (None: ``runs/<algo>-<env name>-<time>``)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Periodic evaluation settings."""
    target: TargetConfig = field(default_factory=TargetConfig)
    """Training-success target (steps and wall-clock to reach it; optionally stop there)."""
    version: str = field(default_factory=shiftgrid_version)
    """shiftgrid version that wrote this config."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML- and ``torch.load(weights_only=True)``-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """Build and validate a config; unknown keys and wrong types raise :class:`ConfigError`."""
        config = from_mapping(cls, data)
        config.validate()
        return config

    def validate(self) -> None:
        """Check values that types alone do not (positive counts, ranges, ...)."""
        if self.eval.freq < 0:
            raise ConfigError(f"eval.freq must be >= 0, got {self.eval.freq}")
        if self.eval.episodes < 1 or self.eval.n_envs < 1:
            raise ConfigError(f"eval.episodes and eval.n_envs must be >= 1, got {self.eval.episodes}, {self.eval.n_envs}")
        if self.target.success is not None and not 0 < self.target.success <= 1:
            raise ConfigError(f"target.success must be in (0, 1] or null, got {self.target.success}")
        if self.target.episodes < 1:
            raise ConfigError(f"target.episodes must be >= 1, got {self.target.episodes}")
        if self.eval.backend not in EVAL_BACKENDS:
            raise ConfigError(f"eval.backend must be one of {', '.join(EVAL_BACKENDS)}, got {self.eval.backend!r}")
        if not (self.eval.splits == "all" or _is_str_list(self.eval.splits)):
            raise ConfigError(f"eval.splits must be 'all' or a list of split names, got {self.eval.splits!r}")


@dataclass
class TrainConfig(RunConfig):
    """Everything a learner's training run needs; saved as ``config.yaml`` in the run directory.

    Example:
        >>> TrainConfig(algo="dqn", steps=5000).to_dict()["algo"]
        'dqn'
    """

    algo: str = "ppo"
    """A registered learner (:func:`~shiftgrid.agents.run.registry.learner_names`): ``ppo``, ``a2c``, ``dqn``, ``recurrent-ppo``..."""
    env_kwargs: dict = field(default_factory=dict)
    """Extra keyword arguments for the environment (e.g. ``exposure: 0.05``)."""
    steps: int = 100_000
    """Total environment steps (summed over the parallel environments)."""
    n_envs: int = 8
    """Training environments stepped side by side."""
    vec_env: str = "dummy"
    """``dummy`` (one process), ``subproc`` (one process per environment) or ``tensor`` (the tensor engine: all
    environments stepped as one batch of torch tensors; shiftgrid ids and the minigrid ids it can express)."""
    engine: dict = field(default_factory=dict)
    """Options of the tensor engine when ``vec_env`` is ``tensor``: ``bank_size`` (levels in the cached bank of the
    split, built on first use), ``workers`` (processes building it), ``device``, ``compile``."""
    torch_threads: int | None = 1
    """CPU threads torch may use (None: torch's default). One suits these small networks: on a busy
    CPU, extra threads can make each small forward pass many times slower."""
    hyperparams: dict = field(default_factory=dict)
    """The learner's settings (for SB3 learners: the algorithm's keyword arguments, ``learning_rate``, ...)."""
    policy: dict = field(default_factory=dict)
    """Extra ``policy_kwargs`` of SB3 learners (``net_arch``, ``lstm_hidden_size``, ...)."""
    extractor: dict = field(default_factory=dict)
    """Keyword arguments of :class:`~shiftgrid.agents.sb3.extractor.BabyAIExtractor` (``channels``, ...)."""
    demos: str | None = None
    """A demonstrations dataset (``shiftgrid demos --out DIR``) for the imitation learners (``bc``; optional for ``dagger``, ``expert``)."""
    init_from: str | None = None
    """A run directory or checkpoint whose policy weights start this run (e.g. PPO fine-tuning a ``bc`` run's policy)."""
    dream: str | None = None
    """A ``shiftgrid wm train`` or Dreamer run: SB3 learners train inside its world model (:mod:`shiftgrid.world_models.dream_env`),
    started from real first observations of ``env``; evaluation stays in the real environment."""
    checkpoint_freq: int = 20_000
    """Environment steps between saves of ``checkpoints/latest.pt`` (it is also saved at the end)."""
    log_interval: int = 1
    """SB3 ``log_interval``: rollouts (on-policy) or episodes (DQN) between log writes."""
    progress: bool = True
    """Show a progress bar (steps, SPS, recent success)."""
    advice: AdviceConfig = field(default_factory=AdviceConfig)
    """The oracle teacher's advice during training (granularity, when, budget, fading; off by default).
    Evaluation is always without advice."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """A curriculum teacher choosing the level of every training reset (off by default)."""

    def validate(self) -> None:
        """Also check the learner name (against the registry), the vector env and the counts."""
        check_learner(self.algo)
        super().validate()
        if self.vec_env not in VEC_ENVS:
            raise ConfigError(f"vec_env must be one of {', '.join(VEC_ENVS)}, got {self.vec_env!r}")
        for name in ("steps", "n_envs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_freq < 0:
            raise ConfigError(f"checkpoint_freq must be >= 0, got {self.checkpoint_freq}")
        try:
            self.advice.check()
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.teacher.check()


def from_mapping(cls: type[T], data: Any, prefix: str = "") -> T:
    """A dataclass built from a mapping: names checked, types checked, nested dataclass fields recursed into.

    Example:
        >>> from_mapping(TargetConfig, {"success": 0.9}).success
        0.9
        >>> from_mapping(TrainConfig, {"eval": {"episodes": 5}}).eval.episodes
        5
    """
    data = _check_fields(cls, data, prefix)
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if isinstance(hints[key], type) and dataclasses.is_dataclass(hints[key]):
            data[key] = from_mapping(hints[key], value, f"{prefix}{key}.")
    return cls(**data)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, Mapping)
    return isinstance(value, origin or hint)


def _check_fields(cls: type, data: Any, prefix: str) -> dict[str, Any]:
    """Keys of ``data`` checked against the dataclass ``cls``: names known, values of the declared type."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in hints]
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]}; valid: {', '.join(prefix + k for k in hints)}")
    for key, value in data.items():
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"config key {prefix}{key} = {value!r} has the wrong type; expected {_type_name(hints[key])}")
    return dict(data)


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return "a mapping"
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that also reads ``3e-4`` as a float (plain PyYAML reads a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML text; a syntax error raises :class:`ConfigError` naming ``where``, in one line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"malformed YAML in {where}{at}: {problem}") from None


def load_yaml_file(path: str | Path) -> dict[str, Any]:
    """A YAML file holding a mapping (an empty file is ``{}``)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    data = load_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, got {type(data).__name__}")
    return data


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings into a nested dict; dotted keys nest, values are YAML scalars.

    Example:
        >>> parse_overrides(["steps=5000", "hyperparams.gamma=0.9", "eval.splits=[id, size/far]"])
        {'steps': 5000, 'hyperparams': {'gamma': 0.9}, 'eval': {'splits': ['id', 'size/far']}}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ConfigError(f"--set expects key=value (dotted keys allowed, e.g. hyperparams.gamma=0.99), got {item!r}")
        value = load_yaml(raw, f"--set {item}") if raw.strip() else None
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p.strip(), {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {p} was already given a value, not a mapping")
        node[parts[-1].strip()] = value
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, any other value replaces the base's."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write ``config`` as YAML."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_config(path: str | Path) -> TrainConfig:
    """Read a ``config.yaml`` written by :func:`save_config`."""
    return TrainConfig.from_dict(load_yaml_file(path))
