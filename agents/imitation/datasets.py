"""Recorded episodes as Minari datasets: write a teacher's demonstrations, read episodes back.

A dataset written here is a plain Minari dataset (HDF5), so other offline-RL and imitation
tools read it. Its folder ``DIR`` (``shiftgrid demos --out DIR``) is a **Minari datasets
root** holding one dataset, whose id :func:`dataset_id` derives from the environment and
split, e.g. ``shiftgrid/GoTo/demos-train-v0``. Load it with Minari as::

    MINARI_DATASETS_PATH=DIR python -c "import minari; minari.load_dataset('shiftgrid/GoTo/demos-train-v0')"

or, in Python, ``with minari_root(DIR): minari.load_dataset(...)``; :func:`read_episodes`
finds the one dataset under ``DIR`` by itself.

What is stored: the environment's own observations (``image`` 7x7x3 codes, stored losslessly,
``direction``, ``mission`` text; a minigrid mission space is stored as a ``Text`` space, which
Minari can serialise), actions, rewards, terminations, truncations; per episode its reset
seed and, in ``infos``, ``success``, ``level_hash`` and ``level_seed`` (shiftgrid ids). The env
spec is stored as JSON, so ``dataset.recover_environment()`` rebuilds the environment and split.
Episode ``i`` of a dataset resets with seed ``seed + i`` plus the seeds skipped before it
(episodes the teacher failed, listed in the dataset's metadata), so a seed gives one dataset.

Example:
    >>> import tempfile
    >>> out = tempfile.mkdtemp() + "/demos"
    >>> _ = write_demos(out, "shiftgrid/GoTo-v1", episodes=2, seed=0)
    >>> [(len(e.actions), e.success, e.mission.startswith("go to")) for e in read_episodes(out)][0][1:]
    (True, True)
    >>> next(read_episodes(out, env_id="shiftgrid/Pickup-v1"))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    shiftgrid.agents.imitation.datasets.DatasetError: ... holds episodes of shiftgrid/GoTo-v1 (split train), not shiftgrid/Pickup-v1
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol

import numpy as np

from shiftgrid.agents.run.config import ConfigError

if TYPE_CHECKING:
    import gymnasium as gym
    from minari import MinariDataset

#: Where a dataset's files lie inside its id's folder (Minari's layout).
DATA_DIR, DATA_FILE, METADATA_FILE = "data", "main_data.hdf5", "metadata.json"
#: Key of shiftgrid's own entry in a dataset's metadata.
META_KEY = "shiftgrid"


class DatasetError(ConfigError):
    """A dataset that is missing, truncated, unreadable, or of another environment or split."""


class Teacher(Protocol):
    """What :func:`write_demos` asks of a teacher: the next action in the environment's current state."""

    def act(self, env: "gym.Env") -> int: ...


@dataclass(frozen=True)
class Episode:
    """One recorded episode of ``T`` steps.

    Attributes:
        observations: ``image`` (T+1, 7, 7, 3) uint8 codes, ``direction`` (T+1,) int64,
            ``mission`` (T+1, L) int64 token ids (as :func:`~shiftgrid.envs.learner_env.make_env`
            gives learners) and ``mission_text`` (T+1,) str.
        actions, rewards, terminations, truncations: (T,) arrays.
        seed: the reset seed that replays the episode's level.
        level_seed, level_hash: the level's (None on ids without them).
    """

    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    seed: int | None
    level_seed: int | None
    level_hash: str | None

    @property
    def mission(self) -> str:
        """The mission at the episode's start."""
        return str(self.observations["mission_text"][0])

    @property
    def success(self) -> bool:
        """The mission was completed: the last step terminated with a positive reward."""
        return bool(len(self.actions) and self.terminations[-1] and self.rewards[-1] > 0)

    def __len__(self) -> int:
        return len(self.actions)


@contextlib.contextmanager
def minari_root(path: str | Path) -> Iterator[Path]:
    """Make ``path`` Minari's datasets root (``MINARI_DATASETS_PATH``) while the block runs.

    Example:
        >>> with minari_root("/tmp/somewhere") as root:
        ...     os.environ["MINARI_DATASETS_PATH"] == str(root)
        True
    """
    root = Path(path).absolute()
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def dataset_id(env_id: str, split: str | None, kind: str = "demos") -> str:
    """The Minari id of a dataset of ``env_id`` / ``split``.

    Example:
        >>> dataset_id("shiftgrid/GoTo-v1", "size/far"), dataset_id("BabyAI-GoToLocal-v0", None)
        ('shiftgrid/GoTo/demos-size-far-v0', 'shiftgrid/BabyAI-GoToLocal/demos-v0')
    """
    name = env_id.split(":")[-1].split("/")[-1]
    name = name.rsplit("-v", 1)[0] if name.rsplit("-v", 1)[-1].isdigit() else name
    return f"shiftgrid/{_slug(name)}/{kind}" + (f"-{_slug(split)}" if split else "") + "-v0"


def _storable_space(space: Any) -> Any:
    """The env's observation space with a non-``Text`` mission space (minigrid's) replaced by ``Text``."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict) and "mission" in space.spaces and not isinstance(space["mission"], spaces.Text):
        charset = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.'"
        return spaces.Dict({**space.spaces, "mission": spaces.Text(max_length=512, min_length=0, charset=charset)})
    return space


class EpisodeRecorder:
    """Collects one episode's steps into a Minari ``EpisodeBuffer`` (no JAX needed).

    Example:
        >>> import gymnasium as gym, shiftgrid.envs
        >>> env = gym.make("shiftgrid/GoTo-v1")
        >>> rec = EpisodeRecorder(*env.reset(seed=3), seed=3)
        >>> rec.step(2, *env.step(2))
        >>> len(rec.buffer(0))
        1
    """

    def __init__(self, obs: dict[str, Any], info: dict[str, Any], seed: int | None):
        self.seed = seed
        self.obs: dict[str, list] = {k: [v] for k, v in obs.items()}
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.terminations: list[bool] = []
        self.truncations: list[bool] = []
        self.infos: list[dict[str, Any]] = [info]

    def step(self, action: int, obs: dict[str, Any], reward: float, terminated: bool, truncated: bool,
             info: dict[str, Any]) -> None:
        for k, v in obs.items():
            self.obs[k].append(v)
        self.actions.append(int(action))
        self.rewards.append(float(reward))
        self.terminations.append(bool(terminated))
        self.truncations.append(bool(truncated))
        self.infos.append(info)

    @property
    def success(self) -> bool:
        """The episode ended with the mission completed (terminated with a positive reward)."""
        return bool(self.actions and self.terminations[-1] and self.rewards[-1] > 0)

    def episode(self) -> Episode:
        """The episode as :func:`read_episodes` gives it back."""
        last = self.infos[-1]
        return _episode(self.obs, self.actions, self.rewards, self.terminations, self.truncations, self.seed,
                        last.get("level_seed"), last.get("level_hash"))

    def buffer(self, index: int) -> Any:
        from minari.data_collector import EpisodeBuffer

        obs = {k: (list(map(str, v)) if k == "mission" else np.asarray(v)) for k, v in self.obs.items()}
        infos: dict[str, np.ndarray] = {"success": np.array([bool(i.get("success", False)) for i in self.infos])}
        if all("level_hash" in i for i in self.infos):
            infos["level_hash"] = np.array([str(i["level_hash"]).encode() for i in self.infos])  # bytes: HDF5 has no str
            infos["level_seed"] = np.array([int(i["level_seed"]) for i in self.infos], dtype=np.int64)
        return EpisodeBuffer(id=index, seed=self.seed, observations=obs, actions=np.asarray(self.actions, dtype=np.int64),
                             rewards=np.asarray(self.rewards, dtype=np.float64), terminations=np.asarray(self.terminations),
                             truncations=np.asarray(self.truncations), infos=infos)


def write_dataset(out: str | Path, env: "gym.Env", buffers: list[Any], *, split: str | None, kind: str,
                  algorithm: str, extra: dict[str, Any]) -> Path:
    """Write ``buffers`` (from :class:`EpisodeRecorder`) as a Minari dataset in the new root ``out``; returns its folder.

    Raises:
        DatasetError: ``out`` exists already (datasets are never overwritten).
    """
    import minari

    out = Path(out)
    if out.exists():
        raise DatasetError(f"{out} already exists; datasets are never overwritten: choose another --out")
    assert env.spec is not None
    ident = dataset_id(env.spec.id, split, kind)
    with minari_root(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari warns of unset author fields and of its own deprecations
        dataset = minari.create_dataset_from_buffers(
            ident, buffers, env=env.spec, algorithm_name=algorithm, author="shiftgrid", author_email="shiftgrid@localhost",
            code_permalink="https://pypi.org/project/shiftgrid/", observation_space=_storable_space(env.observation_space),
            action_space=env.action_space, description=f"{kind} of {env.spec.id} (split {split or 'none'}) by {algorithm}",
            jpeg_encoding=False)  # the image holds cell codes, not pixels: lossless
        dataset.storage.update_metadata({META_KEY: {"env": env.spec.id, "split": split, **extra}})
    return out / ident


def default_teacher() -> Teacher:
    """The oracle teacher (shiftgrid's exact oracle; minigrid's ``BabyAIBot`` on BabyAI ids)."""
    from shiftgrid.envs.teacher import OracleTeacher

    return OracleTeacher()


def check_new_dataset(out: str | Path, episodes: int) -> None:
    """Raise :class:`DatasetError` unless ``episodes`` >= 1 and ``out`` does not exist (datasets are never overwritten)."""
    if episodes < 1:
        raise DatasetError(f"episodes must be >= 1, got {episodes}")
    if Path(out).exists():
        raise DatasetError(f"{out} already exists; datasets are never overwritten: choose another --out")


def write_demos(out: str | Path, env_id: str, episodes: int, seed: int = 0, split: str | None = None,
                teacher: Teacher | None = None, progress: bool = False, max_failures: int | None = None,
                env_kwargs: Mapping[str, Any] | None = None) -> Path:
    """Record ``episodes`` successful episodes of ``teacher`` (default: the oracle) on ``env_id`` into ``out``.

    Episodes reset with seeds ``seed``, ``seed + 1``, ...; a seed whose episode the teacher
    does not complete is skipped and listed in the metadata (``skipped_seeds``).

    Args:
        out: a new folder, made a Minari datasets root holding the dataset (see the module docstring).
        env_id: a shiftgrid, minigrid or BabyAI id (``module:id`` imports ``module`` first).
        episodes: successful episodes to record (>= 1).
        seed: first reset seed.
        split: training split of a shiftgrid id (None: ``train``); must be None on other ids.
        teacher: anything with ``act(env) -> action``.
        progress: show a progress bar.
        max_failures: stop with an error after this many failed episodes (default: ``episodes``).
        env_kwargs: keyword arguments of the env (factor values, ``max_steps``...), kept in its spec.

    Raises:
        DatasetError: ``out`` exists, or the teacher failed too often.
        UnknownEnvError, SplitError: a bad id or split.
    """
    import minari  # noqa: F401  (written at the end: a missing extra fails before any episode is recorded)
    from tqdm import tqdm

    check_new_dataset(out, episodes)
    env, split = recording_env(env_id, split, env_kwargs)
    teacher = teacher or default_teacher()
    max_failures = episodes if max_failures is None else max_failures
    buffers: list[Any] = []
    skipped: list[int] = []
    next_seed, steps = seed, 0
    bar = tqdm(total=episodes, unit="episode", desc="demos", disable=not progress, dynamic_ncols=True)
    try:
        while len(buffers) < episodes:
            rec = record_episode(env, next_seed, teacher)
            if rec.success:
                buffers.append(rec.buffer(len(buffers)))
                steps += len(rec.actions)
                bar.update(1)
                bar.set_postfix(steps=steps, skipped=len(skipped), refresh=False)
            else:
                skipped.append(next_seed)
                if len(skipped) > max_failures:
                    raise DatasetError(f"the teacher failed {len(skipped)} episodes of {env_id} (seeds {skipped[:5]}...); "
                                       "nothing written")
            next_seed += 1
        return write_dataset(out, env, buffers, split=split, kind="demos", algorithm=type(teacher).__name__,
                             extra={"seed": seed, "episodes": episodes, "steps": steps, "skipped_seeds": skipped})
    finally:
        bar.close()
        env.close()


def recording_env(env_id: str, split: str | None = None, env_kwargs: Mapping[str, Any] | None = None) -> tuple["gym.Env", str | None]:
    """The environment episodes are recorded in (``gym.make``'s, unwrapped for learners) and its split (None without splits).

    Raises:
        UnknownEnvError, SplitError: a bad id or split.
    """
    import gymnasium as gym

    from shiftgrid.envs.learner_env import has_splits
    from shiftgrid.envs.registration import UnknownEnvError, bare_id

    env_id = bare_id(env_id)
    if has_splits(env_id):
        split = split or "train"
        return gym.make(env_id, split=split, **dict(env_kwargs or {})), split
    if split not in (None, "train"):
        raise UnknownEnvError(f"{env_id} has no splits (got split={split!r}); only shiftgrid ids do")
    if env_id not in gym.registry:
        raise UnknownEnvError(f"unknown environment id {env_id!r} (a shiftgrid, minigrid or BabyAI id)")
    return gym.make(env_id, **dict(env_kwargs or {})), None


def record_episode(env: "gym.Env", seed: int, teacher: Teacher) -> EpisodeRecorder:
    """One episode of ``teacher`` in ``env`` from ``reset(seed=seed)``, recorded.

    Example:
        >>> rec = record_episode(recording_env("shiftgrid/GoTo-v1")[0], 0, default_teacher())
        >>> rec.success, rec.episode().level_hash == rec.infos[0]["level_hash"]
        (True, True)
    """
    rec = EpisodeRecorder(*env.reset(seed=seed), seed=seed)
    done = False
    while not done:
        action = int(teacher.act(env))
        obs, reward, terminated, truncated, info = env.step(action)
        rec.step(action, obs, float(reward), terminated, truncated, info)
        done = terminated or truncated
    return rec


def find_dataset(path: str | Path) -> Path:
    """The dataset folder (``<id>/``, holding ``data/``) of the one dataset in the Minari root ``path``, or ``path`` itself.

    Raises:
        DatasetError: nothing there, no dataset, or several.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {path} does not exist")
    if (path / DATA_DIR / METADATA_FILE).is_file():
        return path
    found = sorted(p.parent.parent for p in path.rglob(f"{DATA_DIR}/{METADATA_FILE}"))
    if not found:
        raise DatasetError(f"{path} holds no Minari dataset (no {DATA_DIR}/{METADATA_FILE} under it); "
                           "write one with: shiftgrid demos --out DIR")
    if len(found) > 1:
        raise DatasetError(f"{path} holds several datasets ({', '.join(str(p.relative_to(path)) for p in found)}); "
                           "give the folder of one")
    return found[0]


def open_dataset(path: str | Path) -> "MinariDataset":
    """The Minari dataset at ``path`` (a root with one dataset, or a dataset's folder), its files checked.

    Raises:
        DatasetError: missing, truncated or unreadable files (one line, naming the file).
    """
    import h5py
    from minari import MinariDataset

    folder = find_dataset(path)
    data = folder / DATA_DIR
    if not (data / DATA_FILE).is_file():
        raise DatasetError(f"dataset {folder} is missing its episodes file {data / DATA_FILE}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = MinariDataset(data)
        with h5py.File(data / DATA_FILE, "r") as f:
            stored = sum(1 for k in f if k.startswith("episode_"))
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"cannot read dataset {folder} (truncated or corrupt): {str(e).splitlines()[0]}") from None
    if stored != dataset.total_episodes:
        raise DatasetError(f"dataset {folder} is truncated: its metadata lists {dataset.total_episodes} episodes, "
                           f"{data / DATA_FILE} holds {stored}")
    return dataset


def dataset_env(dataset: "MinariDataset") -> tuple[str, str | None]:
    """(env id, split) a dataset was recorded on (split None on ids without splits)."""
    spec = dataset.env_spec
    if spec is None:
        raise DatasetError(f"dataset {dataset.id} records no environment spec")
    return spec.id, spec.kwargs.get("split")


def dataset_env_kwargs(dataset: "MinariDataset") -> dict[str, Any]:
    """The env keyword arguments a dataset was recorded with, besides the family, its splits and the split."""
    spec = dataset.env_spec
    return {k: v for k, v in (spec.kwargs if spec else {}).items() if k not in _SPEC_KEYS}


_SPEC_KEYS = ("family", "splits", "split")


def check_env(dataset: "MinariDataset", where: str | Path, env_id: str | None, split: str | None = None,
              env_kwargs: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`DatasetError` unless ``dataset`` was recorded on ``env_id`` (and ``split`` and ``env_kwargs``, where given)."""
    import json

    from shiftgrid.envs.registration import bare_id

    recorded, recorded_split = dataset_env(dataset)
    if env_id is not None and bare_id(env_id) != recorded:
        raise DatasetError(f"dataset {where} holds episodes of {recorded} (split {recorded_split}), not {bare_id(env_id)}")
    if split is not None and recorded_split is not None and split != recorded_split:
        raise DatasetError(f"dataset {where} holds episodes of {recorded} split {recorded_split!r}, not split {split!r}")
    if env_kwargs is not None:
        mine, theirs = json.dumps(dict(env_kwargs), sort_keys=True), json.dumps(dataset_env_kwargs(dataset), sort_keys=True)
        if mine != theirs:
            raise DatasetError(f"dataset {where} was recorded with env kwargs {theirs}, not {mine}")


def read_episodes(path: str | Path, env_id: str | None = None, split: str | None = None,
                  env_kwargs: Mapping[str, Any] | None = None) -> Iterator[Episode]:
    """The episodes of the dataset at ``path``, in order, checked against ``env_id`` / ``split`` / ``env_kwargs`` (None: any).

    Raises (when iterated):
        DatasetError: a missing, truncated or unreadable dataset, or one of another env or split.
    """
    dataset = open_dataset(path)
    check_env(dataset, path, env_id, split, env_kwargs)
    metadata = dataset.storage.get_episode_metadata(dataset.episode_indices)
    try:
        for meta, ep in zip(metadata, dataset.iterate_episodes()):
            n = len(ep.actions)
            if any(len(v) != n + 1 for v in ep.observations.values()) or not (len(ep.rewards) == len(ep.terminations) == n):
                raise DatasetError(f"dataset {path}: episode {ep.id} is inconsistent ({n} actions, "
                                   f"{len(ep.observations['image'])} observations): truncated or corrupt")
            infos = ep.infos or {}
            level_hash, level_seed = infos.get("level_hash"), infos.get("level_seed")
            yield _episode(ep.observations, ep.actions, ep.rewards, ep.terminations, ep.truncations, meta.get("seed"),
                           None if level_seed is None else level_seed[0],
                           None if level_hash is None else bytes(level_hash[0]).decode())
    except (OSError, KeyError) as e:
        raise DatasetError(f"cannot read dataset {path} (truncated or corrupt): {str(e).splitlines()[0]}") from None


def _episode(observations: Mapping[str, Any], actions: Any, rewards: Any, terminations: Any, truncations: Any,
             seed: int | None, level_seed: Any, level_hash: str | None) -> Episode:
    """An :class:`Episode` from the env's own observations (mission text, tokenised here as learners see it)."""
    from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN, encode

    obs = {k: np.asarray(v) for k, v in observations.items() if k != "mission"}
    texts = np.asarray([str(m) for m in observations["mission"]], dtype=object)
    obs["mission"] = np.stack([encode(t, DEFAULT_MAX_LEN) for t in texts])
    obs["mission_text"] = texts
    obs["direction"] = np.asarray(obs["direction"], dtype=np.int64)
    return Episode(obs, np.asarray(actions, dtype=np.int64), np.asarray(rewards, dtype=np.float64),
                   np.asarray(terminations, dtype=bool), np.asarray(truncations, dtype=bool), seed,
                   None if level_seed is None else int(level_seed), level_hash)
