"""``make gpu-check``: every CUDA path of the suite, each run in its own subprocess, and one table of figures.

Each entry of :data:`CHECKS` is one command (the CLI as a user runs it, pytest, or a probe of
this module) with a timeout; a check that fails or runs out of time is reported and the rest
still run. The table names the card and the torch / CUDA versions, and gives each check its
result, seconds and figure (updates/s, imagined steps/s, ...). A command may print a line
``gpu-check figure: TEXT``; TEXT is its figure unless the check reads one itself.

On a machine without CUDA it says so in one line and exits 0. ``--device cpu`` runs the same
checks on the CPU at smoke sizes (seconds each): a test runs it, so the script cannot rot
between GPU runs. Exit status: 0 every check passed (or no CUDA), 1 a check failed, was
skipped or timed out, 2 bad input.

Add a check with one :class:`Check` entry in :data:`CHECKS`.

Example:
    $ python -m shiftgrid.scripts.gpu_check                  # every check on CUDA, at most 8 minutes
    $ python -m shiftgrid.scripts.gpu_check --only wm-train,dream-env --keep runs/gpu-check
    $ python -m shiftgrid.scripts.gpu_check --device cpu      # the same checks on the CPU, smoke sizes
    $ python -m shiftgrid.scripts.gpu_check --list
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

#: The prefix of a line by which a command reports its own figure.
FIGURE_PREFIX = "gpu-check figure: "
#: Seconds all checks may take together (the issue's bound: 8 minutes on one GPU).
BUDGET_S = 480.0
#: The environment every training check uses (cheap resets, so the seconds go to the model).
ENV = "MiniGrid-Empty-5x5-v0"
#: The repository root (tests/ lives there in a checkout; an installed wheel has none).
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Context:
    """What a check's command is built from: the device, smoke or full sizes, and a scratch folder."""

    device: str
    smoke: bool
    workdir: Path
    python: str = sys.executable

    def size(self, full: T, smoke: T) -> T:
        """``full`` on the GPU, ``smoke`` for a quick run."""
        return smoke if self.smoke else full

    def cli(self, *args: str) -> list[str]:
        """The ``shiftgrid`` command line under this interpreter."""
        return [self.python, "-m", "shiftgrid.scripts.cli", *args]


@dataclass(frozen=True)
class Check:
    """One CUDA path: the command proving it, how to read its figure, its timeout.

    ``command`` builds the argv from the context; ``figure`` reads the figure from the command's
    output and the workdir (default: its ``gpu-check figure:`` line); ``after`` names a check whose
    output this one uses (it is skipped if that one did not pass).
    """

    name: str
    what: str
    command: Callable[[Context], list[str]]
    figure: Callable[[Context, str], str] | None = None
    timeout_s: float = 90.0
    after: str | None = None


@dataclass
class Result:
    """How one check went: ``ok``, ``failed``, ``timeout`` or ``skipped``; its seconds and figure (or why not)."""

    name: str
    status: str
    seconds: float = 0.0
    figure: str = ""
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---- figures --------------------------------------------------------------------------------------


def printed_figure(ctx: Context, output: str) -> str:
    """The text of the last ``gpu-check figure:`` line of ``output`` ("" if none)."""
    lines = [ln[len(FIGURE_PREFIX):].strip() for ln in output.splitlines() if ln.startswith(FIGURE_PREFIX)]
    return lines[-1] if lines else ""


def pytest_figure(ctx: Context, output: str) -> str:
    """pytest's summary counts, e.g. ``7 passed, 1 skipped``."""
    counts = re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", _last_summary(output))
    return ", ".join(f"{n} {what}" for n, what in counts if what != "deselected")


def _last_summary(output: str) -> str:
    lines = [ln for ln in output.splitlines() if re.search(r"\d+ (passed|failed|skipped|errors?|deselected)", ln)]
    return lines[-1] if lines else ""


def run_figure(run: str) -> Callable[[Context, str], str]:
    """Updates, updates/s (training seconds only) and env steps/s of the training run in ``workdir/run``."""
    def read(ctx: Context, output: str) -> str:
        import torch

        paths = sorted((ctx.workdir / run).glob("**/checkpoints/latest.pt"))
        if not paths:
            raise FileNotFoundError(f"no checkpoints/latest.pt under {ctx.workdir / run}")
        ckpt = torch.load(paths[0], map_location="cpu", weights_only=True)
        updates = int(ckpt["state"]["counters"]["updates"])
        elapsed = float(ckpt.get("elapsed_s") or 0.0)
        sps = re.search(r"(\d+) SPS", output)
        rate = f", {updates / elapsed:,.1f} updates/s" if elapsed > 0 else ""
        return f"{updates} updates{rate}" + (f", {int(sps.group(1)):,} env steps/s" if sps else "")

    return read


def sps_figure(ctx: Context, output: str) -> str:
    """Environment steps and steps/s of a ``shiftgrid train`` run (its summary line)."""
    m = re.search(r"(\d+) steps, (\d+) SPS", output)
    return f"{int(m.group(1)):,} steps, {int(m.group(2)):,} steps/s" if m else ""


def world_model_benchmark_figure(ctx: Context, output: str) -> str:
    """Per model and preset: imagined steps/s and training replayed steps/s (one line each)."""
    rows = re.findall(r"^(\w+)\s+(\w+)\s+[\d,]+\s+([\d,]+)\s+([\d,]+)\s+[\d,]+\s+[\d.]+x$", output, re.MULTILINE)
    return "\n".join(f"{m}/{p}: {_si(i)} imagined steps/s, {_si(t)} replayed steps/s (training)" for m, p, t, i in rows)


def report_figure(out: str, metric: str, label: str) -> Callable[[Context, str], str]:
    """``split: label value`` for every split of the report in ``workdir/out`` (an evaluation's results.json)."""
    def read(ctx: Context, output: str) -> str:
        import json

        splits = json.loads((ctx.workdir / out / "results.json").read_text())["summary"]["splits"]
        return "; ".join(f"{split}: {label} {values[metric]['iqm']:.3f}" for split, values in splits.items())

    return read


def _si(number: str) -> str:
    x = float(number.replace(",", ""))
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


# ---- the checks -------------------------------------------------------------------------------------


def _wm_train(run: str, *overrides: str) -> Callable[[Context], list[str]]:
    """``shiftgrid wm train`` of an RSSM for a few hundred updates (full) or a few dozen (smoke)."""
    def command(ctx: Context) -> list[str]:
        sizes = ctx.size(
            # (2048 - 512) steps x 256 / (16 x 64) = 384 updates
            ["--preset", "small", "--steps", "2048", "--n-envs", "8", "--set", "hyperparams.train_ratio=256",
             "--set", "hyperparams.learning_starts=512"],
            # (96 - 32) x 16 / (2 x 8) = 64 updates
            ["--preset", "tiny", "--steps", "96", "--n-envs", "2", "--set", "hyperparams.train_ratio=16",
             "--set", "hyperparams.learning_starts=32", "--set", "hyperparams.batch_size=2",
             "--set", "hyperparams.seq_len=8"])
        sets = [a for o in overrides for a in ("--set", o)]
        return ctx.cli("wm", "train", "--model", "rssm", "--env", ENV, "--policy", "random", "--device", ctx.device,
                       "--run-dir", str(ctx.workdir / run), "--no-progress", *sizes, *sets)

    return command


def _compile_backend(ctx: Context) -> list[str]:
    # The smoke run traces with the eager backend: inductor's first compile takes minutes on a CPU.
    return ["hyperparams.model_overrides.compile_backend=eager"] if ctx.smoke else []


def _gpu_tests(ctx: Context) -> list[str]:
    return [ctx.python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "--gpu-device", ctx.device,
            "--rootdir", str(REPO), str(REPO / "tests")]


def _imagination(ctx: Context) -> list[str]:
    sizes = ctx.size(["--presets", "tiny,small", "--batch", "16384", "--horizon", "15", "--repeats", "5",
                      "--train-batch", "16x64", "--steps", "2000"],
                     ["--presets", "tiny", "--batch", "8", "--horizon", "3", "--repeats", "1",
                      "--train-batch", "2x4", "--steps", "100"])
    return ctx.cli("benchmark", "world-model", "--device", ctx.device, "--models", "rssm,transformer",
                   "--env", ENV, *sizes)


def _dreamer(ctx: Context) -> list[str]:
    sizes = ctx.size(
        # (1100 - 500) steps x 256 / (16 x 32) = 300 updates
        ["--steps", "1100", "--set", "hyperparams.prefill=500", "--set", "hyperparams.train_ratio=256"],
        # (64 - 32) x 16 / (2 x 8) = 32 updates
        ["--steps", "64", "--set", "hyperparams.prefill=32", "--set", "hyperparams.train_ratio=16",
         "--set", "hyperparams.batch_size=2", "--set", "hyperparams.seq_len=8",
         "--set", "hyperparams.actor_critic.horizon=3"])
    return ctx.cli("train", "--algo", "dreamer", "--env", ENV, "--device", ctx.device, "--n-envs", "4",
                   "--run-dir", str(ctx.workdir / "dreamer"), "--no-progress", "--set", "hyperparams.preset=tiny",
                   "--set", "eval.freq=0", *sizes)


def _dream_env(ctx: Context) -> list[str]:
    sizes = ctx.size(["--steps", "8192", "--n-envs", "16"],
                     ["--steps", "128", "--n-envs", "2", "--set", "hyperparams.n_steps=32",
                      "--set", "hyperparams.batch_size=32"])
    return ctx.cli("train", "--algo", "ppo", "--dream", str(ctx.workdir / "wm"), "--dream-anyway", "--env", ENV,
                   "--device", ctx.device, "--run-dir", str(ctx.workdir / "dream-ppo"), "--no-progress", "--set", "eval.freq=0",
                   *sizes)  # a model of a few hundred updates: the check runs and warns, the dream's device path is what is checked


def _wm_evaluate(ctx: Context) -> list[str]:
    sizes = ctx.size(["--episodes", "20", "--horizons", "1,5,15"], ["--episodes", "2", "--horizons", "1,3", "--context", "2"])
    return ctx.cli("wm", "evaluate", str(ctx.workdir / "wm"), "--device", ctx.device, "--out",
                   str(ctx.workdir / "wm-eval"), "--no-progress", *sizes)


def _evaluate(ctx: Context) -> list[str]:
    sizes = ctx.size(["--episodes", "100", "--n-envs", "8"], ["--episodes", "4", "--n-envs", "2"])
    return ctx.cli("evaluate", str(ctx.workdir / "dreamer"), "--device", ctx.device, "--out", str(ctx.workdir / "eval"),
                   *sizes)


def _probe(name: str) -> Callable[[Context], list[str]]:
    def command(ctx: Context) -> list[str]:
        return [ctx.python, "-m", "shiftgrid.scripts.gpu_check", "--probe", name, "--device", ctx.device,
                *(["--smoke"] if ctx.smoke else [])]

    return command


#: Every CUDA path, in the order they run. A new path is one more entry.
CHECKS: tuple[Check, ...] = (
    Check("gpu-tests", "the tests marked gpu (pytest -m gpu)", _gpu_tests, pytest_figure, timeout_s=120),
    Check("replay", "sequence replay kept on the device: add and sample", _probe("replay"), timeout_s=60),
    Check("imagination", "shiftgrid benchmark world-model: imagination and training throughput", _imagination,
          world_model_benchmark_figure, timeout_s=120),
    Check("wm-train", "shiftgrid wm train (RSSM), a few hundred updates", _wm_train("wm"), run_figure("wm"),
          timeout_s=120),
    Check("wm-evaluate", "shiftgrid wm evaluate of wm-train's model: open-loop scoring on the device", _wm_evaluate,
          report_figure("wm-eval", "changed_cell_accuracy@1", "changed-cell accuracy @1"), timeout_s=90,
          after="wm-train"),
    Check("wm-bf16", "shiftgrid wm train with bf16 autocast (model_overrides.bf16=true)",
          _wm_train("wm-bf16", "hyperparams.model_overrides.bf16=true"), run_figure("wm-bf16"), timeout_s=120),
    Check("wm-compile", "shiftgrid wm train with torch.compile (model_overrides.compile=true)",
          lambda ctx: _wm_train("wm-compile", "hyperparams.model_overrides.compile=true", *_compile_backend(ctx))(ctx),
          run_figure("wm-compile"), timeout_s=240),
    Check("dreamer", "shiftgrid train --algo dreamer, a few hundred updates", _dreamer, run_figure("dreamer"),
          timeout_s=150),
    Check("evaluate", "shiftgrid evaluate of the Dreamer run: its agent acting on the device", _evaluate,
          report_figure("eval", "success_rate", "success rate"), timeout_s=90, after="dreamer"),
    Check("dream-env", "shiftgrid train --algo ppo --dream (PPO inside wm-train's model)", _dream_env, sps_figure,
          timeout_s=120, after="wm-train"),
)


# ---- probes: CUDA paths no command runs alone -------------------------------------------------------


def probe_replay(device: str, smoke: bool) -> str:
    """Fill a :class:`SequenceReplay` on ``device`` from host arrays and sample from it; steps/s of each.

    Raises:
        AssertionError: a stored or sampled tensor is not on ``device``.
    """
    import numpy as np
    import torch

    from shiftgrid.world_models.replay import SequenceReplay

    n, steps, (b, t), repeats = (4, 64, (2, 8), 3) if smoke else (64, 2048, (64, 64), 50)
    replay = SequenceReplay(n, n * steps, token_lengths={"mission": 40}, device=device)
    rng = np.random.default_rng(0)
    obs = lambda: {"image": rng.integers(0, 11, (n, 7, 7, 3), dtype=np.uint8), "direction": rng.integers(0, 4, n),  # noqa: E731
                   "mission": rng.integers(0, 69, (n, 40))}
    frames = [obs() for _ in range(8)]
    replay.reset(frames[0])
    def sync() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        done = rng.random(n) < 0.02
        replay.add(rng.integers(0, 7, n), frames[i % 8], rng.random(n).astype(np.float32), done, np.zeros(n, bool))
    sync()
    added = n * steps / (time.perf_counter() - t0)
    where = torch.device(device).type
    assert all(x.device.type == where for x in replay.data.values()), "replay tensors left the device"
    g = torch.Generator().manual_seed(0)
    replay.sample(b, t, generator=g)
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        batch = replay.sample(b, t, generator=g)
    sync()
    sampled = repeats * b * t / (time.perf_counter() - t0)
    assert all(x.device.type == where for x in batch.values()), "a sampled batch left the device"
    return f"{_si(str(added))} steps added/s (from host arrays), {_si(str(sampled))} steps sampled/s (B x T = {b} x {t})"


#: Probes by name (``--probe NAME``): each returns its figure.
PROBES: dict[str, Callable[[str, bool], str]] = {"replay": probe_replay}


# ---- running and the table --------------------------------------------------------------------------


def run_check(check: Check, ctx: Context, timeout_s: float) -> Result:
    """Run ``check``'s command in a subprocess (output to ``workdir/<name>.log``) within ``timeout_s``."""
    log = ctx.workdir / f"{check.name}.log"
    t0 = time.perf_counter()
    try:
        argv = check.command(ctx)
        with open(log, "w") as out:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, cwd=ctx.workdir)
    except subprocess.TimeoutExpired:
        return Result(check.name, "timeout", time.perf_counter() - t0, f"killed after {timeout_s:.0f} s", log)
    seconds = time.perf_counter() - t0
    output = log.read_text(errors="replace")
    if proc.returncode != 0:
        return Result(check.name, "failed", seconds, f"exit {proc.returncode}: {_last_line(output)}", log)
    try:
        figure = (check.figure or printed_figure)(ctx, output)
    except Exception as e:  # the command passed; a figure that cannot be read is reported, not raised
        return Result(check.name, "failed", seconds, f"figure unreadable: {type(e).__name__}: {e}", log)
    return Result(check.name, "ok", seconds, figure, log)


def _last_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else "(no output)"


def run_checks(checks: Sequence[Check], ctx: Context, budget_s: float = BUDGET_S,
               report: Callable[[Result], None] = lambda r: None) -> list[Result]:
    """Run ``checks`` in order, each within its timeout and what is left of ``budget_s``; one :class:`Result` each."""
    results: dict[str, Result] = {}
    deadline = time.perf_counter() + budget_s
    for check in checks:
        left = deadline - time.perf_counter()
        if check.after is not None and not (check.after in results and results[check.after].ok):
            result = Result(check.name, "skipped", figure=f"needs {check.after}, which did not pass")
        elif left < 1:
            result = Result(check.name, "skipped", figure=f"out of time (the checks' budget is {budget_s:.0f} s)")
        else:
            result = run_check(check, ctx, min(check.timeout_s, left))
        results[check.name] = result
        report(result)
    return list(results.values())


def format_table(results: Sequence[Result]) -> str:
    """One row per check (result, seconds, figure); a figure of several lines continues under its column."""
    width = max([len("check"), *(len(r.name) for r in results)])
    head = f"{'check':<{width}}  {'result':<7}  {'seconds':>7}  figure"
    rows = [head, "-" * len(head)]
    for r in results:
        lines = r.figure.splitlines() or [""]
        rows.append(f"{r.name:<{width}}  {r.status:<7}  {r.seconds:>7.1f}  {lines[0]}".rstrip())
        rows += [f"{'':<{width}}  {'':<7}  {'':>7}  {ln}" for ln in lines[1:]]
    return "\n".join(rows)


def device_line(device: str, smoke: bool) -> str:
    """The card (or the CPU) and the torch, CUDA and cuDNN versions."""
    import platform

    import torch

    versions = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}"
    if torch.backends.cudnn.is_available():
        versions += f", cuDNN {torch.backends.cudnn.version()}"
    if torch.device(device).type == "cuda":
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        card = f"{torch.cuda.get_device_name(index)} ({props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} visible)"
    else:
        card = f"CPU ({platform.processor() or platform.machine()})"
    return f"gpu-check on {card}; {versions}; {'smoke' if smoke else 'full'} sizes"


def no_cuda_line() -> str | None:
    """None where CUDA is usable; else the one line saying why not."""
    from shiftgrid.world_models.device import no_cuda_reason

    why = no_cuda_reason()
    return None if why is None else f"gpu-check: no CUDA here ({why}); nothing checked"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpu-check", description=(__doc__ or "").split("\n\n")[0],
                                epilog="exit status: 0 all passed (or no CUDA), 1 a check did not pass, 2 bad input")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (cpu: smoke sizes) (default: cuda)")
    p.add_argument("--smoke", action="store_true", help="smoke sizes on CUDA too (seconds per check)")
    p.add_argument("--only", help=f"comma-separated checks to run, in their order: {', '.join(c.name for c in CHECKS)}")
    p.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds all checks may take (default: {BUDGET_S:.0f})")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep logs and runs in DIR (default: a temporary folder, "
                   "kept only if a check fails)")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("--probe", choices=sorted(PROBES), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not (args.device == "cpu" or re.fullmatch(r"cuda(:\d+)?", args.device)):
        p.error(f"unknown --device {args.device!r}; valid: cuda, cuda:N, cpu")
    if args.budget <= 0:
        p.error(f"--budget must be > 0 seconds, got {args.budget}")
    return args


def select(only: str | None) -> list[Check]:
    """The checks named in ``only`` (all if None), in :data:`CHECKS` order; a check's ``after`` comes along."""
    if only is None:
        return list(CHECKS)
    names = {n.strip() for n in only.split(",") if n.strip()}
    known = {c.name for c in CHECKS}
    if not names or names - known:
        raise ValueError(f"unknown checks {sorted(names - known) or only!r}; valid: {', '.join(c.name for c in CHECKS)}")
    names |= {c.after for c in CHECKS if c.name in names and c.after}
    return [c for c in CHECKS if c.name in names]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    smoke = args.smoke or args.device == "cpu"
    if args.probe:
        print(FIGURE_PREFIX + PROBES[args.probe](args.device, smoke))
        return 0
    if args.list:
        for c in CHECKS:
            print(f"{c.name:<12} {c.what}" + (f" (after {c.after})" if c.after else ""))
        return 0
    try:
        checks = select(args.only)
    except ValueError as e:
        print(f"gpu-check: error: {e}", file=sys.stderr)
        return 2
    if args.device != "cpu" and (why := no_cuda_line()) is not None:
        print(why)
        return 0
    print(device_line(args.device, smoke), flush=True)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gpu-check-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(args.device, smoke, workdir.resolve())
    t0 = time.perf_counter()
    results = run_checks(checks, ctx, args.budget,
                         report=lambda r: print(f"  {r.name}: {r.status} ({r.seconds:.0f} s)", flush=True))
    print(format_table(results))
    passed = sum(r.ok for r in results)
    print(f"{passed} of {len(results)} checks passed in {time.perf_counter() - t0:.0f} s", end="")
    if passed == len(results) and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
        print()
    else:
        print(f"; logs and runs in {workdir}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
