"""``shiftgrid benchmark NAME``: one benchmark per subcommand, each with its own options (``--help``).

``shiftgrid benchmark envs``: reset+step throughput of each family next to a comparable minigrid env.

Both are driven by the same random policy in the same process, interleaved, and the median
of ``--repeats`` is reported with the ratio shiftgrid / minigrid. The oracle is on (as in
training), so the figure includes computing every level's optimal plan.

A second table compares, per family, the cost of a reset on held-out levels with a reset on
training levels, measured in the same run, interleaved: ``train`` against ``id`` (the same
factors, on the held-out hash bucket), their cost ratio, every held-out split in turn (the
mean cost of an evaluation reset), and held-out resets that repeat 20 seeds (as evaluation
does every time it scores the same levels).

Example:
    $ shiftgrid benchmark envs --steps 20000 --repeats 3
    $ shiftgrid benchmark engine   # the tensor engine against minigrid's env, DoorKey and GoTo, eager and compiled
    $ shiftgrid benchmark engine --batches 1024,16384 --compile-batches none --threads 2
    $ shiftgrid benchmark sweep --points 4 --repeats 3   # sweep overhead per point (local, ray)
    $ shiftgrid benchmark world-model --models rssm,transformer --presets tiny,small --threads 2
    $ shiftgrid benchmark imitation --demos 500,1000,2000,5000 --algos bc,dagger,expert --seeds 0,1,2 --json rows.jsonl
    $ shiftgrid benchmark imitation --from rows.jsonl   # demonstrations needed for 99% success, from saved rows
    $ shiftgrid benchmark efficiency runs/dreamer-goto runs/efficiency-goto   # steps to 90% training success, against PPO
    $ shiftgrid benchmark curriculum runs/curriculum-doorkey-150k runs/efficiency-doorkey   # per teacher, against uniform
    $ shiftgrid benchmark ppo --env shiftgrid/GoTo-v1 --repeats 3   # tensor-ppo's training steps/s against SB3 ppo's
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
from functools import partial
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
from tqdm import tqdm

import shiftgrid.envs
from shiftgrid.envs.throughput import REFERENCES, measure, measure_resets, measure_resets_over
from shiftgrid.scripts.cli import UserError, one_line_errors


#: The benchmarks: name -> the line ``shiftgrid benchmark --help`` gives it.
BENCHMARKS = {
    "envs": "reset+step throughput of each family next to a comparable minigrid env, and reset costs",
    "engine": "the tensor engine's steps/s per batch size (eager and compiled) and its bank resets, against minigrid's "
              "env and shiftgrid's minigrid env, with the goals said reached or not",
    "sweep": "seconds per point a sweep adds over running its points by hand, on each backend",
    "world-model": "training and imagination steps/s of world models next to the real env's",
    "imitation": "held-out success of bc, dagger and the intelligent expert per demonstration budget and seed, and the "
                 "smallest budget reaching 99%%",
    "efficiency": "steps to a training-success goal of the runs in DIRs, against PPO's",
    "curriculum": "steps to a training-split success goal per curriculum teacher, against uniform's (curriculum runs only)",
    "ppo": "training steps/s of tensor-ppo, per network, against SB3 ppo's on the same env, with the goals said reached or not",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="print throughput figures (envs, sweep, world-model) and sample efficiency",
                       description="Each benchmark has its own options: shiftgrid benchmark NAME --help.")
    one_line_errors(p, "shiftgrid benchmark")
    which = p.add_subparsers(dest="what", metavar="NAME", required=True)
    parsers = {name: which.add_parser(name, help=text, description=text[:1].upper() + text[1:] + ".")
               for name, text in BENCHMARKS.items()}
    for name, q in parsers.items():
        one_line_errors(q, f"shiftgrid benchmark {name}")
        q.set_defaults(command=f"benchmark {name}")
    _envs_options(parsers["envs"])
    _engine_options(parsers["engine"])
    _sweep_options(parsers["sweep"])
    _world_model_options(parsers["world-model"])
    _imitation_options(parsers["imitation"])
    _ppo_options(parsers["ppo"])
    for name in ("efficiency", "curriculum"):
        q = parsers[name]
        q.add_argument("dirs", nargs="*", type=Path, metavar="DIR", help="sweep dirs (runs/dreamer-goto) or run dirs")
        q.add_argument("--goal", type=float, default=0.9, help="100-episode training success to reach (default: 0.9)")
    parsers["efficiency"].add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(func=run)


def _envs_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--families", default="all", help="comma-separated family names, or 'all' (default: all)")
    q.add_argument("--steps", type=int, default=20000, help="random-policy steps per measurement (default: 20000)")
    q.add_argument("--resets", type=int, default=500, help="resets per reset-only measurement (default: 500)")
    q.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported (default: 3)")
    q.add_argument("--split", default="train", help="split of the shiftgrid env to measure (default: train)")


def _engine_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--families", default=",".join(ENGINE_FAMILIES),
                   help=f"comma-separated family names, or 'all' (default: {','.join(ENGINE_FAMILIES)})")
    q.add_argument("--batches", default="256,1024,4096,16384", help="comma-separated batch sizes (default: 256,1024,4096,16384)")
    q.add_argument("--compile-batches", default="4096", help="batch sizes also measured under torch.compile, or 'none' "
                   "(default: 4096; each compiles once, about a minute on a 2-core machine the first time)")
    q.add_argument("--threads", type=int, default=1, help="torch threads of the engine (default: 1)")
    q.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    q.add_argument("--steps", type=int, default=ENGINE_REFERENCE_STEPS,
                   help=f"random-policy steps of each reference env (default: {ENGINE_REFERENCE_STEPS})")
    q.add_argument("--bank-size", type=int, default=1000, help="training levels in the bank it resets from (cached) (default: 1000)")
    q.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported (default: 3)")


def _sweep_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--points", type=int, default=4, help="tiny PPO points per measurement (default: 4)")
    q.add_argument("--backends", default="local,ray", help="comma-separated backends to measure (default: local,ray)")
    q.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported (default: 3)")


def _world_model_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--models", default="rssm,transformer", help="comma-separated model families (default: rssm,transformer)")
    q.add_argument("--presets", default="tiny,small", help="comma-separated size presets (default: tiny,small)")
    q.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    q.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    q.add_argument("--env", default="shiftgrid/GoTo-v1", help="the real env measured next to the models")
    q.add_argument("--steps", type=int, default=20000, help="random-policy steps of the real env (default: 20000)")
    q.add_argument("--batch", type=int, default=1024, help="imagination batch (default: 1024)")
    q.add_argument("--horizon", type=int, default=15, help="imagination horizon (default: 15)")
    q.add_argument("--train-batch", default="16x64", help="training B x T (default: 16x64)")
    q.add_argument("--repeats", type=int, default=3, help="repeats; the median is reported (default: 3)")


def _imitation_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--env", default="shiftgrid/GoTo-v1", help="comma-separated env ids (default: shiftgrid/GoTo-v1)")
    q.add_argument("--demos", default="500,1000,2000,5000", help="comma-separated demonstration counts")
    q.add_argument("--updates", type=int, default=2000, help="minibatch updates (of 256) per row, every algo (default: 2000)")
    q.add_argument("--episodes", type=int, default=1000, help="held-out training-split episodes scored (default: 1000)")
    q.add_argument("--algos", default="bc", help="comma-separated algos among bc, dagger, expert (default: bc)")
    q.add_argument("--seeds", "--seed", default="0", help="comma-separated seeds (demonstrations and learner) (default: 0)")
    q.add_argument("--device", default="auto", help="torch device of the learners (default: auto)")
    q.add_argument("--threads", type=int, default=None, help="torch threads (default: 1)")
    q.add_argument("--datasets", default=None, metavar="PATH",
                   help="each seed's demonstrations, a path with {seed} (and {env} for several envs: the id with / as _), "
                        "e.g. demos/goto-{seed} written by shiftgrid demos --seed <seed * 10^7>; each budget takes its first "
                        "demonstrations (default: record them, once per env and seed)")
    q.add_argument("--set", dest="hyperparams", action="append", default=[], metavar="KEY=VALUE",
                   help="a learner hyperparameter for every row, e.g. --set memory=true (bc with memory); rows say it")
    q.add_argument("--json", type=Path, default=None, metavar="FILE", help="append each row as a JSON line")
    q.add_argument("--from", dest="from_file", type=Path, default=None, metavar="FILE",
                   help="print the summary of the rows saved in FILE (by --json) and run nothing")
    q.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="also draw success against demonstrations (one panel per env, one line per algo) into PNG")


def _ppo_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--env", default="shiftgrid/GoTo-v1", help="the env both learners train on (default: shiftgrid/GoTo-v1)")
    q.add_argument("--networks", default="cheap,babyai", help="comma-separated tensor-ppo networks (default: cheap,babyai)")
    q.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported (default: 3)")
    q.add_argument("--reference-steps", type=int, default=8192, help="training steps of SB3 ppo per repeat (default: 8192)")
    q.add_argument("--tensor-steps", type=int, default=32768, help="training steps of tensor-ppo per repeat (default: 32768)")
    q.add_argument("--tensor-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config key of the tensor-ppo runs over its presets (repeatable): --tensor-set n_envs=256")


#: Families ``benchmark engine`` measures by default, and its reference env steps.
ENGINE_FAMILIES = ("DoorKey", "GoTo")
ENGINE_REFERENCE_STEPS = 5000


def _engine(args: argparse.Namespace) -> int:
    """The tensor engine against minigrid's env and shiftgrid's minigrid env (:mod:`shiftgrid.envs.engine.benchmark`)."""
    import torch

    from shiftgrid.envs.engine import benchmark as eb
    from shiftgrid.envs.engine.bank import build_bank
    from shiftgrid.envs.engine.batch import check_device

    families = _families(args.families)
    batches = tuple(_ints("--batches", args.batches, 1))
    compiled = () if args.compile_batches.strip().lower() == "none" else tuple(_ints("--compile-batches", args.compile_batches, 1))
    steps, threads = args.steps, args.threads
    if steps < 100 or args.repeats < 1 or threads < 1 or args.bank_size < 1:
        raise UserError(f"--steps must be >= 100 and --repeats, --threads, --bank-size >= 1; got {steps}, {args.repeats}, "
                        f"{threads}, {args.bank_size}")
    device = str(check_device(args.device))
    torch.set_num_threads(threads)
    print(f"tensor engine on {device}, {threads} torch thread(s), random policy, resets included; references: one env in "
          f"one Python thread, {steps} steps; median of {args.repeats} interleaved repeats; torch {torch.__version__}", flush=True)
    results = []
    with tqdm(total=len(families), desc="benchmark engine", leave=False) as bar:
        for name in families:
            bank = build_bank(shiftgrid.envs.family_splits(name).family.env_id(), "train", args.bank_size, progress=False)
            results.append(eb.measure_family(name, bank, batches, compiled, steps, args.repeats, device,
                                             progress=bar.set_postfix_str))
            bar.update()
    print(f"{'family':<8} {'mode':<9} {'B':>6} {'engine steps/s':>15} {'per thread':>11} {'vs minigrid':>12} "
          f"{'vs shiftgrid env':>17} {'step ms':>8} {'reset ms':>9} {'reset/step':>11} {'compile s':>10}")
    for fig in results:
        for e in fig.engine:
            print(f"{fig.family:<8} {e.mode:<9} {e.batch:>6} {e.steps_per_second:>15,.0f} {e.per_thread:>11,.0f} "
                  f"{e.per_thread / fig.minigrid:>11.1f}x {e.per_thread / fig.shiftgrid:>16.1f}x {e.step_seconds * 1e3:>8.2f} "
                  f"{e.reset_seconds * 1e3:>9.2f} {e.reset_over_step:>10.2f}x "
                  f"{e.compile_seconds if e.mode == 'compiled' else float('nan'):>10.1f}")
    print()
    print(f"{'family':<8} {'reference (minigrid)':<28} {'minigrid steps/s':>17} {'shiftgrid env steps/s':>22}")
    for fig in results:
        print(f"{fig.family:<8} {fig.reference_id:<28} {fig.minigrid:>17,.0f} {fig.shiftgrid:>22,.0f}")
    print()
    print("goals (engine steps/s per thread against minigrid's env of the family, on this machine):")
    for fig in results:
        for text, reached, figure in eb.goals(fig):
            verdict = "not measured" if reached is None else "REACHED" if reached else "NOT reached"
            print(f"  {fig.family:<8} {text:<46} {verdict:<12} ({figure})")
    return 0


def _quiet_make(env_id: str) -> gym.Env:
    """Make a minigrid env whose resets print nothing (BabyAI levels print rejected samples)."""
    return _Quiet(gym.make(env_id))


class _Quiet(gym.Wrapper):
    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        with contextlib.redirect_stdout(io.StringIO()):
            return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        with contextlib.redirect_stdout(io.StringIO()):
            return self.env.step(action)


def _families(arg: str) -> list[str]:
    known = [f.name for f in shiftgrid.envs.BUILTIN_FAMILIES]
    if arg == "all":
        return known
    names = [n.strip() for n in arg.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise UserError(f"unknown families {bad}; valid: {', '.join(known)}")
    return names


def run(args: argparse.Namespace) -> int:
    if args.what in ("efficiency", "curriculum"):
        if not args.dirs:
            raise UserError(f"benchmark {args.what} needs at least one DIR (a sweep dir such as runs/curriculum-maze-150k, or a run dir)")
        if not 0 < args.goal <= 1:
            raise UserError(f"--goal must be a success rate in (0, 1], got {args.goal}")
        return _efficiency(args) if args.what == "efficiency" else _curriculum(args)
    if args.what == "sweep":
        return _sweep(args)
    if args.what == "world-model":
        return _world_model(args)
    if args.what == "imitation":
        return _imitation(args)
    if args.what == "ppo":
        return _ppo(args)
    if args.what == "engine":
        return _engine(args)
    if args.steps < 100 or args.repeats < 1 or args.resets < 1:
        raise UserError(f"--steps must be >= 100 and --repeats, --resets >= 1; got {args.steps}, {args.repeats}, {args.resets}")
    families = _families(args.families)
    print(f"reset+step throughput, random policy, {args.steps} steps x {args.repeats} repeats (median), oracle on")
    header = f"{'family':<10} {'minigrid reference':<32} {'shiftgrid sps':>14} {'minigrid sps':>13} {'ratio':>6} {'shiftgrid resets/s':>19} {'minigrid resets/s':>18}"
    rows = []
    for name in tqdm(families, desc="families", leave=False):
        ours = partial(gym.make, shiftgrid.envs.family_splits(name).family.env_id(), split=args.split)
        ref = partial(_quiet_make, REFERENCES[name])
        a, b, ra, rb = [], [], [], []
        for r in range(args.repeats):
            a.append(measure(ours, args.steps, seed=r).steps_per_second)
            b.append(measure(ref, args.steps, seed=r).steps_per_second)
            ra.append(measure_resets(ours, args.resets, seed=r).resets_per_second)
            rb.append(measure_resets(ref, args.resets, seed=r).resets_per_second)
        sa, sb = statistics.median(a), statistics.median(b)
        rows.append(f"{name:<10} {REFERENCES[name]:<32} {sa:>14.0f} {sb:>13.0f} {sa / sb:>5.2f}x {statistics.median(ra):>19.0f} {statistics.median(rb):>18.0f}")
    print(header)
    print("\n".join(rows))
    print()
    _held_out_table(families, args.resets, args.repeats)
    return 0


def _curriculum(args: argparse.Namespace) -> int:
    """Steps to ``--goal`` success on uniformly drawn training levels per curriculum teacher (:mod:`~shiftgrid.agents.benchmarks.curriculum`)."""
    from shiftgrid.agents.benchmarks.curriculum import report

    try:
        print(report(args.dirs, args.goal))
    except ValueError as e:
        raise UserError(str(e)) from None
    return 0


#: Seeds a repeated (evaluation-like) held-out measurement cycles through.
REPEAT_SEEDS = range(20)


def _held_out_table(families: list[str], resets: int, repeats: int) -> None:
    """Print train vs held-out reset rates per family (interleaved, median of ``repeats``)."""
    each = max(1, resets // 10)
    print(f"reset cost, training vs held-out levels: {resets} resets x {repeats} repeats (median), oracle on; "
          f"every held-out split: {each} resets each")
    print(f"{'family':<10} {'train resets/s':>15} {'id resets/s':>12} {'id/train cost':>14} "
          f"{'every held-out split resets/s':>30} {'repeated id resets/s':>21}")
    for name in tqdm(families, desc="held-out resets", leave=False):
        env_id = shiftgrid.envs.family_splits(name).family.env_id()
        make = partial(gym.make, env_id)
        tests = [partial(gym.make, env_id, split=s) for s in shiftgrid.envs.splits_for(env_id).test_splits()]
        train, held, every, again = [], [], [], []
        for r in range(repeats):
            train.append(measure_resets(partial(make, split="train"), resets, seed=r).resets_per_second)
            held.append(measure_resets(partial(make, split="id"), resets, seed=r).resets_per_second)
            every.append(measure_resets_over(tests, each, seed=r).resets_per_second)
            again.append(measure_resets(partial(make, split="id"), resets, seed=r, repeat_seeds=REPEAT_SEEDS).resets_per_second)
        t, h = statistics.median(train), statistics.median(held)
        print(f"{name:<10} {t:>15.0f} {h:>12.0f} {t / h:>13.2f}x {statistics.median(every):>30.0f} "
              f"{statistics.median(again):>21.0f}")


def _sweep(args: argparse.Namespace) -> int:
    """Print a sweep's overhead per point over the same points run by hand (needs the learner extra; ray for ray)."""
    from shiftgrid.scripts.sweep_cmd import BENCH_BASE, benchmark

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.points < 1 or args.repeats < 1 or not set(backends) <= {"local", "ray"}:
        raise UserError(f"--points and --repeats must be >= 1 and --backends local and/or ray; got {args.points}, "
                        f"{args.repeats}, {args.backends!r}")
    rows = benchmark(args.points, args.repeats, backends)
    print(f"sweep overhead: {args.points} points of {BENCH_BASE['algo']} on {BENCH_BASE['env']} ({BENCH_BASE['steps']} steps "
          f"each), one at a time, {args.repeats} repeats (median)")
    print(f"{'how':<22} {'s per point':>12} {'over one train per point':>25}")
    for way, seconds in rows:
        print(f"{way:<22} {seconds:>12.2f} {seconds - rows[0][1]:>+25.2f}")
    return 0


def _efficiency(args: argparse.Namespace) -> int:
    """Steps and wall-clock to ``--goal`` training success and to each run's target, per run and per algorithm."""
    from shiftgrid.agents.benchmarks import efficiency as eb

    try:
        runs, skipped = eb.read_runs(args.dirs, args.goal)
    except eb.RunDirError as e:
        raise UserError(str(e)) from None
    grouped = eb.groups(runs)
    print(f"steps to {args.goal:.0%} training success ({eb.WINDOW}-episode mean, window full), per run:\n")
    print(eb.runs_table(runs, args.goal))
    print("\nper env and algo (IQM over runs; >=: a run short of the goal counts at its steps logged, a lower bound):\n")
    print(eb.groups_table(grouped, args.goal))
    if skipped:
        print(f"\nno training success logged yet (left out): {', '.join(map(str, skipped))}")
    if args.json:
        args.json.write_text(json.dumps(eb.to_json(runs, grouped, args.goal), indent=2) + "\n")
    return 0


def _ints(name: str, text: str, low: int) -> list[int]:
    """A comma-separated list of integers >= ``low`` (``UserError`` naming the option otherwise)."""
    try:
        values = [int(c) for c in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < low:
        raise UserError(f"{name} expects comma-separated integers >= {low} (e.g. {low},{low + 1}), got {text!r}")
    return values


def _imitation(args: argparse.Namespace) -> int:
    """Held-out success of bc, dagger and the expert per demonstration budget and seed (BabyAI's sample efficiency)."""
    from shiftgrid.agents.benchmarks import imitation as ib

    if args.plot is not None and (args.plot.suffix.lower() != ".png" or not args.plot.parent.is_dir()):
        raise UserError(f"--plot {args.plot}: give a .png file in an existing folder")
    if args.from_file is not None:
        try:
            rows = ib.read_rows(args.from_file)
        except (OSError, ValueError) as e:
            raise UserError(f"--from {args.from_file}: {e}") from None
        if not rows:
            raise UserError(f"--from {args.from_file}: no rows in the file")
        print(ib.summary(rows))
        if args.plot is not None:
            print(f"curves: {ib.plot_curves(rows, args.plot)}")
        return 0
    counts, seeds = _ints("--demos", args.demos, 1), _ints("--seeds", args.seeds, 0)
    algos = [a.strip() for a in args.algos.split(",")]
    bad = [a for a in algos if a not in ib.ALGOS]
    if bad or not algos:
        raise UserError(f"--algos: unknown {bad or args.algos!r} in {args.algos!r}; valid: {', '.join(ib.ALGOS)}")
    if args.updates < 1 or args.episodes < 1:
        raise UserError(f"--updates and --episodes must be >= 1, got {args.updates}, {args.episodes}")
    envs = [e.strip() for e in args.env.split(",") if e.strip()]
    if not envs:
        raise UserError(f"--env expects comma-separated env ids (e.g. shiftgrid/GoTo-v1,shiftgrid/Pickup-v1), got {args.env!r}")
    print(f"{', '.join(algos)} on {', '.join(envs)}, seeds {', '.join(map(str, seeds))}: about {args.updates} updates of "
          f"256 per row, scored on {args.episodes} held-out training-split episodes (most likely action); rows as they "
          "are measured:", flush=True)
    print(ib.HEADER, flush=True)

    def on_row(row: dict) -> None:
        print(ib.row_line(row), flush=True)
        if args.json is not None:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")

    if args.datasets is not None:
        if "{seed}" not in args.datasets or (len(envs) > 1 and "{env}" not in args.datasets):
            raise UserError(f"--datasets must name each seed's dataset with {{seed}} (and {{env}} for several envs), "
                            f"got {args.datasets!r}")
        for env_id in envs:
            for seed in seeds:
                path = ib.dataset_path(args.datasets, env_id, seed)
                if not path.is_dir():
                    raise UserError(f"--datasets: no dataset at {path} (write it with: shiftgrid demos --env {env_id} "
                                    f"--seed {seed * 10**7} --episodes {max(counts)} --out {path})")
    from shiftgrid.agents.run.config import ConfigError, parse_overrides

    try:
        hyperparams = parse_overrides(args.hyperparams)
        rows = ib.benchmark(envs, algos, counts, seeds, episodes=args.episodes, updates=args.updates, device=args.device,
                            torch_threads=args.threads or 1, on_row=on_row, datasets=args.datasets, hyperparams=hyperparams)
    except ConfigError as e:
        raise UserError(f"--set {' '.join(args.hyperparams)}: {e}") from None
    print()
    print(ib.summary(rows))
    if args.plot is not None:
        print(f"curves: {ib.plot_curves(rows, args.plot)}")
    return 0


def _ppo(args: argparse.Namespace) -> int:
    """Print tensor-ppo's training steps/s per network against SB3 ppo's, measured in this run."""
    from shiftgrid.agents.benchmarks import ppo_speed
    from shiftgrid.agents.tensor_ppo.networks import NETWORKS

    networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    bad = [n for n in networks if n not in NETWORKS]
    if bad or not networks:
        raise UserError(f"unknown --networks {bad or args.networks!r}; valid: {', '.join(NETWORKS)}")
    if min(args.reference_steps, args.tensor_steps) < 1024 or args.repeats < 1:
        raise UserError(f"--reference-steps and --tensor-steps must be >= 1024 and --repeats >= 1; got "
                        f"{args.reference_steps}, {args.tensor_steps}, {args.repeats}")
    from shiftgrid.agents.run.config import parse_overrides

    tensor = parse_overrides(args.tensor_set)
    print(f"training throughput on {args.env}, CPU, 1 torch thread, each learner's presets"
          f"{' (tensor-ppo with ' + ', '.join(args.tensor_set) + ')' if args.tensor_set else ''}, no evaluation; "
          f"median of {args.repeats} interleaved repeats")
    rows = ppo_speed.measure_all(args.env, networks, args.reference_steps, args.tensor_steps, args.repeats,
                                 overrides={"tensor-ppo": tensor})
    print(ppo_speed.table(rows))
    return 0


def _world_model(args: argparse.Namespace) -> int:
    """Print training and imagination throughput per model and preset, each next to the env measured just before it."""
    from shiftgrid.world_models import benchmark as wmb
    from shiftgrid.world_models.device import resolve_device
    from shiftgrid.world_models.models import model_config, model_names

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    bad = [m for m in models if m not in model_names()]
    if bad or not models:
        raise UserError(f"unknown --models {bad or args.models!r}; valid: {', '.join(model_names())}")
    try:
        b, t = (int(x) for x in args.train_batch.lower().split("x"))
    except ValueError:
        raise UserError(f"--train-batch must look like 16x64, got {args.train_batch!r}") from None
    if min(b, t, args.batch, args.horizon, args.repeats) < 1 or args.steps < 100 or (args.threads is not None and args.threads < 1):
        raise UserError(f"--batch, --horizon, --repeats, --threads and --train-batch must be >= 1 and --steps >= 100; got "
                        f"{args.batch}, {args.horizon}, {args.repeats}, {args.threads}, {args.train_batch}, {args.steps}")
    try:
        device = str(resolve_device(args.device))
        for name in models:
            for preset in presets:
                model_config(name, preset)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(f"world-model throughput on {device}: training B x T = {b} x {t} (replayed steps/s), imagination batch "
          f"{args.batch} x horizon {args.horizon} (imagined steps/s, no frames decoded), {args.env} random-policy "
          f"steps/s measured just before each row; median of {args.repeats}")
    print(f"{'model':<12} {'preset':<8} {'params':>10} {'train steps/s':>14} {'imagined steps/s':>17} {'env steps/s':>12} "
          f"{'imagined / env':>15}")
    for name in models:
        for preset in presets:
            env_sps = wmb.env_throughput(args.env, args.steps)
            fig = wmb.benchmark(name, preset, args.env, device, args.batch, args.horizon, args.repeats,
                                train_batch=(b, t), threads=args.threads, env_per_second=env_sps)
            print(f"{name:<12} {preset:<8} {fig.parameters:>10,} {fig.replayed_per_second:>14,.0f} "
                  f"{fig.imagined_per_second:>17,.0f} {fig.env_per_second:>12,.0f} {fig.ratio:>14.1f}x", flush=True)
    print(f"torch threads: {fig.threads}")
    return 0
