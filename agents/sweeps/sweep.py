"""Sweeps: a base config and a grid of values, expanded into named points, each one training run.

A sweep file (YAML) has these sections (only ``grid`` is required)::

    name: goto-ppo              # default: the file's name; the sweep dir is runs/<name> unless `dir:`
    base:                       # config keys, as a --config file would give them, over the presets
      algo: ppo
      env: shiftgrid/GoTo-v1
      config: more.yaml         # optional: a config file (relative to the sweep file) under these keys
      set: [steps=200000]       # optional: --set overrides, over everything above
    grid:                       # key -> values; the points are their cartesian product
      seed: [0, 1, 2]
      hyperparams.learning_rate: [3.0e-4, 1.0e-3]
    learners: {}                # optional: name -> "module:attribute" learners to register (plugins)
    evaluate: {episodes: 1000}  # optional: episodes, splits, seed, n_envs, checkpoint, stochastic, reference_episodes
    resources: {}               # optional: num_cpus, gpu_fraction (per point, for the Ray backend)

Each point is resolved exactly as ``shiftgrid train`` resolves a run (defaults < presets of the
point's algo and env < ``base`` < ``base.set`` < the point's grid values) and validated before
any runs. A point's name lists its grid values in grid order (``algo=ppo,seed=0``); points that
differ only in ``seed`` are seeds of one configuration (the name without ``seed=``).

Example:
    >>> sweep = Sweep.from_mapping({"base": {"algo": "dqn", "env": "MiniGrid-Empty-5x5-v0"},
    ...                             "grid": {"seed": [0, 1], "hyperparams.gamma": [0.9, 0.99]}}, "demo.yaml")
    >>> points = expand(sweep, "runs/demo")
    >>> [p.name for p in points]
    ['seed=0,hyperparams.gamma=0.9', 'seed=0,hyperparams.gamma=0.99', 'seed=1,hyperparams.gamma=0.9', 'seed=1,hyperparams.gamma=0.99']
    >>> points[1].configuration, points[1].config["hyperparams"]["gamma"], points[1].config["run_dir"]
    ('hyperparams.gamma=0.99', 0.99, 'runs/demo/runs/seed=0,hyperparams.gamma=0.99')
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from shiftgrid.agents.run.config import ConfigError, TrainConfig, load_yaml_file, merge, parse_overrides
from shiftgrid.agents.run.registry import get_learner, learner_names, register_learner, unregister_learner
from shiftgrid.agents.run.rundir import CHECKPOINTS, RUNS_ROOT, SweepDir
from shiftgrid.envs.errors import UserInputError
from shiftgrid.world_models.device import DeviceError

SECTIONS = ("name", "dir", "base", "grid", "learners", "evaluate", "resources")
#: The grid evaluation's settings (``shiftgrid evaluate``'s defaults); ``checkpoint``: ``best`` (best.pt where
#: there is one, as ``shiftgrid evaluate DIR``) or ``latest`` (the final checkpoint); ``reference_episodes``: how many
#: of the same levels the references (uniform random, constant actions) play (null: all ``episodes``).
EVALUATE_KEYS = {"episodes": 1000, "splits": "all", "seed": 0, "n_envs": 4, "checkpoint": "best", "stochastic": False,
                 "reference_episodes": None}
RESOURCE_KEYS = {"num_cpus": None, "gpu_fraction": 0.25}
#: Keys the sweep sets itself on every point.
OWNED = ("run_dir",)
STATES = ("pending", "running", "done", "failed", "interrupted")
FINAL = ("done", "failed", "interrupted")


@dataclass
class Sweep:
    """A parsed sweep file (see the module docstring)."""

    name: str
    where: str
    from_file: dict[str, Any]
    overrides: dict[str, Any]
    grid: dict[str, list]
    learners: dict[str, str] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=lambda: dict(EVALUATE_KEYS))
    resources: dict[str, Any] = field(default_factory=lambda: dict(RESOURCE_KEYS))
    dir: str | None = None
    source: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Any, where: str, folder: str | Path = ".") -> "Sweep":
        """Check a sweep file's mapping (``where`` names it in errors; ``folder`` anchors ``base.config``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a sweep file holds a mapping of sections ({', '.join(SECTIONS)}), got {data!r}")
        unknown = [k for k in data if k not in SECTIONS]
        if unknown:
            raise ConfigError(f"{where}: unknown section {unknown[0]!r}; valid: {', '.join(SECTIONS)}")
        base = dict(_mapping(data.get("base") or {}, f"{where}: base"))
        overrides = base.pop("set", None) or []
        if not (isinstance(overrides, list) and all(isinstance(s, str) for s in overrides)):
            raise ConfigError(f"{where}: base.set must be a list of key=value strings (as --set), got {overrides!r}")
        config_file = base.pop("config", None)
        from_file = load_yaml_file(Path(folder) / config_file) if config_file else {}
        grid = _grid(data.get("grid"), where)
        for key in [*base, *grid]:
            if key.split(".")[0] in OWNED:
                raise ConfigError(f"{where}: {key} is set by the sweep (each point runs in <sweep dir>/runs/<point>)")
        name = data.get("name") or Path(where).name.rsplit(".", 1)[0]
        evaluate = check_evaluate(_known(data.get("evaluate") or {}, EVALUATE_KEYS, f"{where}: evaluate"), where)
        return cls(str(name), where, merge(from_file, base), parse_overrides(overrides), grid,
                   _strings(data.get("learners") or {}, f"{where}: learners"),
                   evaluate,
                   _known(data.get("resources") or {}, RESOURCE_KEYS, f"{where}: resources"),
                   data.get("dir"), dict(data))

    def register_learners(self) -> None:
        """Register the sweep's ``learners`` that are not registered yet (in the driver and in every point).

        Raises:
            ConfigError: a learner that cannot be imported here (it is left unregistered).
        """
        for name, target in self.learners.items():
            if name not in learner_names():
                register_learner(name, target)
                try:
                    get_learner(name)
                except (ConfigError, ImportError) as e:
                    unregister_learner(name)
                    raise ConfigError(f"{self.where}: learners: {e}") from None


@dataclass
class Point:
    """One grid point: its name, grid values, configuration (name without seed) and resolved config."""

    name: str
    values: dict[str, Any]
    configuration: str
    config: dict[str, Any]


def check_evaluate(evaluate: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``evaluate:`` section's values checked (as ``shiftgrid evaluate`` checks its flags), before any point trains.

    Split names are checked against each point's env by :func:`expand`.

    Example:
        >>> try:
        ...     check_evaluate({**EVALUATE_KEYS, "episodes": -4}, "s.yaml")
        ... except ConfigError as e:
        ...     print(e)
        s.yaml: evaluate.episodes must be an integer >= 1, got -4
    """
    for key, low in (("episodes", 1), ("n_envs", 1), ("seed", 0)):
        value = evaluate[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{where}: evaluate.{key} must be an integer >= {low}, got {value!r}")
    ref = evaluate["reference_episodes"]
    if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref <= evaluate["episodes"]):
        raise ConfigError(f"{where}: evaluate.reference_episodes must be null or an integer in 0..{evaluate['episodes']} "
                          f"(evaluate.episodes), got {ref!r}")
    if evaluate["checkpoint"] not in CHECKPOINTS:
        raise ConfigError(f"{where}: evaluate.checkpoint must be one of {', '.join(CHECKPOINTS)}, got {evaluate['checkpoint']!r}")
    if not isinstance(evaluate["stochastic"], bool):
        raise ConfigError(f"{where}: evaluate.stochastic must be true or false, got {evaluate['stochastic']!r}")
    splits = evaluate["splits"]
    if splits != "all" and not (isinstance(splits, list) and splits and all(isinstance(s, str) for s in splits)):
        raise ConfigError(f"{where}: evaluate.splits must be 'all' or a list of split names (e.g. [id, size/far]), got {splits!r}")
    return evaluate


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file."""
    path = Path(path)
    return Sweep.from_mapping(load_yaml_file(path), str(path), path.parent)


def sweep_dir(sweep: Sweep, given: str | Path | None = None) -> SweepDir:
    """``given``, else the file's ``dir:``, else ``runs/<name>``; made absolute (Ray workers start elsewhere)."""
    return SweepDir(Path(given or sweep.dir or Path(RUNS_ROOT) / sweep.name).resolve())


def label(key: str, value: Any) -> str:
    """``key=value`` as a point name shows it (env ids by their name; ``/`` never appears).

    Example:
        >>> label("env", "shiftgrid/GoTo-v1"), label("hyperparams.learning_rate", 3e-4), label("split", "size/far")
        ('env=GoTo-v1', 'hyperparams.learning_rate=0.0003', 'split=size_far')
    """
    if key == "env" and isinstance(value, str):
        text = value.split("/")[-1].split(":")[-1]
    else:
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return f"{key}={text}".replace("/", "_").replace(os.sep, "_")


def expand(sweep: Sweep, root: str | Path) -> list[Point]:
    """Every point of the grid, resolved and validated (nothing runs before all are valid).

    Raises:
        ConfigError: two points with one name, or a point whose config is invalid (naming the point).
    """
    from shiftgrid.agents.evaluation.episodes import splits_to_evaluate
    from shiftgrid.agents.run.presets import layered  # the layering of `shiftgrid train`, not a copy

    sweep.register_learners()
    keys = list(sweep.grid)
    points: dict[str, Point] = {}
    built: set[str] = set()
    for combo in itertools.product(*(sweep.grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = ",".join(label(k, v) for k, v in values.items())
        if name in points:
            raise ConfigError(f"{sweep.where}: two grid points are both named {name!r} "
                              f"({points[name].values} and {values}); make the grid's values distinct")
        point_dir = SweepDir(root).run(name).root
        command_line = merge(merge(sweep.overrides, _nested(values)), {"run_dir": str(point_dir), "progress": False})
        try:
            merged = layered(sweep.from_file, command_line)
            config = TrainConfig.from_dict(merged).to_dict()
            check_builds(config, built)
            splits_to_evaluate(config["env"], sweep.evaluate["splits"])  # the grid's evaluation, checked before any point trains
        except (ConfigError, DeviceError, UserInputError) as e:
            raise ConfigError(f"{sweep.where}: point {name}: {e}") from None
        configuration = ",".join(label(k, v) for k, v in values.items() if k != "seed") or sweep.name
        points[name] = Point(name, values, configuration, config)
    return list(points.values())


def check_builds(config: Mapping[str, Any], built: set[str]) -> None:
    """Build ``config``'s learner for acting (no training envs) so its hyperparameters are checked before any point runs.

    Configs that differ only in seed and run dir are built once (``built`` keeps what was).

    Raises:
        ConfigError: the learner rejects its settings (e.g. a hyperparameter another algorithm has).
    """
    from shiftgrid.agents.run.registry import get_learner

    key = json.dumps({k: v for k, v in config.items() if k not in ("seed", "run_dir")}, sort_keys=True, default=str)
    if key in built:
        return
    factory = get_learner(config["algo"])
    try:
        learner = factory(TrainConfig.from_dict(dict(config)), training=False)
    except ConfigError:
        raise
    except Exception as e:  # a learner of another package may reject its settings in its own way
        raise ConfigError(f"the {config['algo']} learner cannot be built: {type(e).__name__}: {e}") from None
    close = getattr(learner, "close", None)
    if callable(close):
        close()
    built.add(key)


def point_resources(config: Mapping[str, Any], resources: Mapping[str, Any]) -> dict[str, float]:
    """What a point asks of a Ray cluster: CPUs (its envs' processes), and a GPU fraction when it asks for CUDA.

    Example:
        >>> point_resources({"device": "cuda", "n_envs": 8, "vec_env": "subproc"}, RESOURCE_KEYS)
        {'num_cpus': 8, 'num_gpus': 0.25}
        >>> point_resources({"device": "cpu", "n_envs": 8, "vec_env": "dummy"}, RESOURCE_KEYS)
        {'num_cpus': 1, 'num_gpus': 0}
    """
    cpus = resources.get("num_cpus") or (config["n_envs"] if config.get("vec_env") == "subproc" else 1)
    gpus = resources.get("gpu_fraction", 0.25) if str(config.get("device", "")).startswith("cuda") else 0
    return {"num_cpus": cpus, "num_gpus": gpus}


def write_spec(where: SweepDir, sweep: Sweep, points: list[Point]) -> None:
    """``sweep.yaml``: the file as given and the expanded grid (point -> values, configuration, config)."""
    where.root.mkdir(parents=True, exist_ok=True)
    doc = {"sweep": dataclasses.asdict(sweep),
           "points": {p.name: {"values": p.values, "configuration": p.configuration, "config": p.config} for p in points}}
    _write_atomic(where.spec, yaml.safe_dump(doc, sort_keys=False))


def read_spec(where: SweepDir) -> tuple[Sweep, list[Point]]:
    """The sweep and points a sweep dir was expanded into."""
    doc = load_yaml_file(where.spec)
    sweep = Sweep(**doc["sweep"])
    return sweep, [Point(name, p["values"], p["configuration"], p["config"]) for name, p in doc["points"].items()]


def merge_points(stored: list[Point], fresh: list[Point], where: str) -> list[Point]:
    """For ``--resume``: the stored points plus new ones; a stored point whose config changed is an error."""
    known = {p.name: p for p in stored}
    for p in fresh:
        old = known.get(p.name)
        if old is not None and _comparable(old.config) != _comparable(p.config):
            raise ConfigError(f"{where}: point {p.name} differs from the one this sweep dir ran; resume the sweep as it "
                              "was, or give a new dir")
    return stored + [p for p in fresh if p.name not in known]


def read_status(where: SweepDir, point: str) -> dict[str, Any]:
    """A point's status (``{"state": "pending"}`` before anything was written)."""
    try:
        return json.loads(where.status(point).read_text())
    except FileNotFoundError:
        return {"state": "pending"}


def write_status(where: SweepDir, point: str, state: str, **fields: Any) -> dict[str, Any]:
    """Record a point's state (one of :data:`STATES`) with ``fields`` (error, wall_s, steps...); returns it."""
    if state not in STATES:
        raise ValueError(f"unknown point state {state!r}; valid: {', '.join(STATES)}")
    status = {**read_status(where, point), "state": state, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}
    where.status(point).parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(where.status(point), json.dumps(status, indent=1, default=str))
    return status


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "version"}


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys into nested mappings: ``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        *parents, last = key.split(".")
        node: dict[str, Any] = {}
        leaf = node
        for p in parents:
            leaf = leaf.setdefault(p, {})
        leaf[last] = value
        out = merge(out, node)
    return out


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    return data


def _grid(data: Any, where: str) -> dict[str, list]:
    if not data:
        raise ConfigError(f"{where}: the grid is empty; give `grid:` keys with lists of values, e.g. seed: [0, 1, 2]")
    grid = dict(_mapping(data, f"{where}: grid"))
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    for key, values in grid.items():
        if not isinstance(key, str) or key.split(".")[0] not in fields:
            raise ConfigError(f"{where}: grid key {key!r} is not a config key; valid: {', '.join(fields)} "
                              "(dotted for nested keys, e.g. hyperparams.gamma)")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid key {key} needs a non-empty list of values, got {values!r}")
    return grid


def _strings(data: Any, where: str) -> dict[str, str]:
    data = _mapping(data, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"{where} maps names to 'module:attribute' strings, got {dict(data)!r}")
    return dict(data)


def _known(data: Any, defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    data = _mapping(data, where)
    unknown = [k for k in data if k not in defaults]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(defaults)}")
    return {**defaults, **data}
