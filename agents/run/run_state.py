"""What a run carries across checkpoints and resumes, and how it is asked to stop.

:class:`Episode` is a finished training episode as a learner reports it; :class:`RunState` is what
the run services report from and save in every checkpoint (episodes, the target's window,
evaluations, ``best.pt``'s choice, wall-clock, the teacher's cost); :func:`stop_on_signals` turns
Ctrl-C / SIGTERM into a stop request the run services answer. What a training loop calls is
:mod:`shiftgrid.agents.run.services`.

Example:
    >>> state = RunState()
    >>> with stop_on_signals(state):
    ...     pass  # learner.learn(steps, run)
    >>> state.signum is None
    True
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

from shiftgrid.agents.run.checkpoint import Checkpoint

#: Finished training episodes the progress bar and ``rollout/*`` average over (SB3's window).
RECENT = 100


@dataclass(frozen=True)
class Episode:
    """A finished training episode, as a learner reports it.

    ``advised``: a teacher helped during it (spoke advice); it counts for ``rollout/*`` but not
    toward the training-success target, which is met by the learner alone.
    """

    success: bool
    ret: float = 0.0
    length: int = 0
    advised: bool = False


@dataclass
class RunState:
    """What a run carries across checkpoints and resumes.

    Attributes:
        best: how ``best.pt`` was chosen (split, success, step, validation seeds), or None.
        history: every evaluation during training: ``{"step": n, "success": {split: x}}``.
        eval: split -> success at the last evaluation.
        signum: the signal (SIGINT/SIGTERM) that asked the run to stop, if any.
        stop_reason: ``signal``, ``target``, ``nan`` or ``steps`` (steps taken outside the learner's own
            reached the run's steps) once the run was asked to stop.
        elapsed_before: seconds of training before this call (earlier calls of a resumed run).
        started: ``time.perf_counter()`` when this call started training.
        target: the training-success target as met, or None.
        detail: the learner's one-line account of why it stopped (e.g. which loss term was NaN), or None.
        teacher: the teacher's cost so far (see :meth:`RunServices.teacher_cost`): name -> running total.
        episodes: training episodes ended so far, over all calls (logged as ``rollout/episodes``).
        recent: the last :data:`RECENT` of them (``rollout/*`` and the progress bar average over these).
        window: the training-success target's window (successes of the last ``target.episodes``
            unadvised episodes; kept until the target is met).
    """

    best: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, float] = field(default_factory=dict)
    signum: int | None = None
    stop_reason: str | None = None
    elapsed_before: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    target: dict[str, Any] | None = None
    detail: str | None = None
    teacher: dict[str, float] = field(default_factory=dict)
    episodes: int = 0
    recent: deque[Episode] = field(default_factory=lambda: deque(maxlen=RECENT))
    window: deque[bool] = field(default_factory=deque)

    @property
    def best_success(self) -> float | None:
        return None if self.best is None else self.best["success"]

    def elapsed(self) -> float:
        """Wall-clock seconds the run has trained, over all its calls (evaluations included)."""
        return self.elapsed_before + time.perf_counter() - self.started

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> "RunState":
        """The state a resumed run continues from."""
        record = checkpoint.episodes or {}
        recent = record.get("recent") or {}
        return cls(best=checkpoint.best, history=list(checkpoint.history), eval=dict(checkpoint.eval),
                   elapsed_before=checkpoint.elapsed_s, target=checkpoint.target, episodes=int(record.get("count", 0)),
                   recent=deque((Episode(bool(s), float(r), int(n), bool(a)) for s, r, n, a in
                                 zip(*(recent.get(k, []) for k in ("success", "ret", "length", "advised")))), maxlen=RECENT),
                   window=deque(bool(w) for w in record.get("window", [])))

    def episodes_record(self) -> dict[str, Any]:
        """The checkpoint's ``episodes`` entry (plain lists: ``weights_only``-safe); :meth:`of` reads it back."""
        return {"count": int(self.episodes), "window": [bool(w) for w in self.window],
                "recent": {"success": [bool(e.success) for e in self.recent], "ret": [float(e.ret) for e in self.recent],
                           "length": [int(e.length) for e in self.recent], "advised": [bool(e.advised) for e in self.recent]}}


@contextlib.contextmanager
def stop_on_signals(state: RunState) -> Iterator[RunState]:
    """Turn SIGINT / SIGTERM into a stop request (``state.signum``) while the block runs.

    The run then stops at its next step and saves a checkpoint. A second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Outside the main thread (where Python cannot install
    handlers) signals keep their usual behaviour.
    """
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: object) -> None:
        if state.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        state.signum, state.stop_reason = signum, "signal"

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
