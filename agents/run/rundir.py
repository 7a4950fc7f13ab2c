"""The run-directory layout, defined once: every command reads and writes runs through :class:`RunDir`.

A run directory holds::

    config.yaml             the resolved config (with the shiftgrid version that wrote it)
    checkpoints/latest.pt   saved periodically, at the end, and on Ctrl-C / SIGTERM
    checkpoints/best.pt     the best checkpoint by ``id`` success on the validation seeds
    target.json             steps and wall-clock to the training-success target, once met
    tb/                     TensorBoard event files (SB3's tags)
    eval/                   the shift report of ``shiftgrid evaluate`` (one run)
    teacher/                logs of teachers that sit inside training

Several seeds of one configuration live in ``<dir>/seed=<k>``, named as a sweep names its points
(``seed=0``, ``seed=1``...; folders named ``seed<k>`` by earlier releases are still read).

A sweep directory (``shiftgrid sweep``, :class:`SweepDir`) holds::

    sweep.yaml              the sweep file as given, and the expanded grid: point name -> resolved config
    status/<point>.json     the point's state (pending, running, done, failed, interrupted), error, wall-clock
    logs/<point>.log        the point's output (stdout and stderr of its training)
    runs/<point>/           the point's run directory, exactly as ``shiftgrid train`` lays it out
    stop                    written on Ctrl-C / SIGTERM of a Ray sweep: its tasks then SIGTERM their points
    report/                 the grid's evaluation: results.md (configurations side by side) and one
                            shift report per configuration in report/<configuration>/

Example:
    >>> run = RunDir("runs/goto")
    >>> str(run.latest), str(run.tb), str(run.seed(2).config)
    ('runs/goto/checkpoints/latest.pt', 'runs/goto/tb', 'runs/goto/seed=2/config.yaml')
    >>> sweep = SweepDir("runs/grid")
    >>> str(sweep.spec), str(sweep.status("seed=0")), str(sweep.run("seed=0").latest)
    ('runs/grid/sweep.yaml', 'runs/grid/status/seed=0.json', 'runs/grid/runs/seed=0/checkpoints/latest.pt')
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
#: The checkpoints a run dir keeps and a reader may choose (``checkpoints/<name>.pt``).
CHECKPOINTS = ("best", "latest")
LATEST, BEST = "latest.pt", "best.pt"
TARGET_FILE = "target.json"
RUNS_ROOT = "runs"
#: A seed's folder in a directory of several seeds: ``seed=<k>`` (and ``seed<k>``, earlier releases' name).
SEED_FOLDER = re.compile(r"seed=?(-?\d+)")
SWEEP_FILE = "sweep.yaml"


class _Path:
    """A path inside a run (or sweep) directory, as a read-only attribute."""

    def __init__(self, *parts: str):
        self.parts = parts

    def __get__(self, run: "RunDir | SweepDir | None", owner: type | None = None) -> Path:
        return run.root.joinpath(*self.parts) if run is not None else Path(*self.parts)


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory (nothing is created until a writer asks)."""

    root: Path

    config = _Path(CONFIG_FILE)
    checkpoints = _Path(CHECKPOINT_DIR)
    latest = _Path(CHECKPOINT_DIR, LATEST)
    best = _Path(CHECKPOINT_DIR, BEST)
    target = _Path(TARGET_FILE)
    tb = _Path("tb")
    eval = _Path("eval")
    teacher = _Path("teacher")

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    def seed(self, seed: int) -> "RunDir":
        """The run of seed ``seed`` in a directory of several seeds (``seed=<k>``, as a sweep names its points)."""
        return RunDir(self.root / f"seed={seed}")

    def seeds(self) -> list["RunDir"]:
        """The seed runs inside this directory (each with a ``config.yaml``), by seed: ``seed=<k>``, and ``seed<k>``
        as earlier releases named them."""
        found = [(int(m.group(1)), p) for p in self.root.glob("seed*")
                 if (m := SEED_FOLDER.fullmatch(p.name)) and (p / CONFIG_FILE).is_file()]
        return [RunDir(p) for _, p in sorted(found)]

    def holds_run(self) -> bool:
        return self.config.is_file()

    @classmethod
    def of(cls, path: str | Path) -> "RunDir":
        """The run of a run directory or of a checkpoint file in it (``<run>/checkpoints/x.pt`` -> ``<run>``).

        Example:
            >>> str(RunDir.of("runs/a/checkpoints/best.pt").root)
            'runs/a'
        """
        path = Path(path)
        if path.is_dir() or path.suffix != ".pt":
            return cls(path)
        return cls(path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent)


@dataclass(frozen=True)
class SweepDir:
    """Paths of one sweep directory: the expanded grid, and per point its status, log and run."""

    root: Path

    spec = _Path(SWEEP_FILE)
    report = _Path("report")
    stop = _Path("stop")

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    def status(self, point: str) -> Path:
        return self.root / "status" / f"{point}.json"

    def log(self, point: str) -> Path:
        return self.root / "logs" / f"{point}.log"

    def run(self, point: str) -> RunDir:
        return RunDir(self.root / "runs" / point)

    def holds_sweep(self) -> bool:
        return self.spec.is_file()


def default_run_dir(learner: str, env_id: str, prefix: str = "") -> RunDir:
    """``runs/<prefix><learner>-<env name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... where that folder exists already
    (runs started within one second of each other).

    Example:
        >>> default_run_dir("ppo", "shiftgrid/GoTo-v1", "main-").root.name.startswith("main-ppo-GoTo-v1-")
        True
    """
    name = env_id.split("/")[-1].split(":")[-1]
    root = Path(RUNS_ROOT) / f"{prefix}{learner}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    found, n = root, 1
    while found.exists():
        n += 1
        found = root.with_name(f"{root.name}-{n}")
    return RunDir(found)
