"""The README and docs/ pages: every relative link reaches a file, every ``#anchor`` a heading of
its page (GitHub's slugs), and every ``shiftgrid`` command shown as one to run parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: Hand-written pages (docs/results/ holds generated reports): their commands must parse.
WRITTEN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}


def split_fences(text: str) -> tuple[str, list[tuple[int, str, str]]]:
    """The text with fenced code blanked out (line numbers kept), and each fenced line as (line number, info, line).

    Example:
        >>> prose, code = split_fences("a\\n```bash\\nshiftgrid envs\\n```\\nb")
        >>> prose.splitlines(), code
        (['a', '', '', '', 'b'], [(3, 'bash', 'shiftgrid envs')])
    """
    prose, code, fence, info = [], [], None, ""
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence, info = m.group(1), m.group(2).lower()
            prose.append("")
        elif fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
            else:
                code.append((number, info, line))
            prose.append("")
        else:
            prose.append(line)
    return "\n".join(prose), code


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lowercased, without punctuation, spaces as hyphens.

    Example:
        >>> github_slug("Sample efficiency: Dreamer against PPO (`shiftgrid benchmark efficiency`)")
        'sample-efficiency-dreamer-against-ppo-shiftgrid-benchmark-efficiency'
        >>> github_slug("[`make run`](x.md) and `make test`")
        'make-run-and-make-test'
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text only
    text = re.sub(r"<[^>]+>", "", text).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every ``#anchor`` the page has: its headings' slugs (repeats get -1, -2, ...) and HTML anchors."""
    prose, _ = split_fences(page.read_text(encoding="utf-8"))
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for line in prose.splitlines():
        found.update(HTML_ANCHOR.findall(line))
        if m := HEADING.match(line):
            slug = github_slug(m.group(2))
            n = repeats.get(slug, 0)
            repeats[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link and reference definition outside code."""
    prose, _ = split_fences(page.read_text(encoding="utf-8"))
    prose = INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)
    found = [(prose.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(prose)]
    found += [(prose.count("\n", 0, m.start()) + 1, m.group(1)) for m in REFERENCE.finditer(prose)]
    return sorted(found)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """One line per link of ``page`` that does not resolve inside ``root``: a missing file or anchor.

    Example:
        >>> broken_links(ROOT / "README.md")
        []
    """
    problems = []
    for number, target in links(page):
        if SCHEME.match(target):  # https:, mailto: ...: not ours to check
            continue
        where = f"{page.relative_to(root)}:{number}: ({target})"
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        if not path and not anchor:
            problems.append(f"{where}: empty link")
        elif root.resolve() not in (dest, *dest.parents):
            problems.append(f"{where}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{where}: no such file {dest.relative_to(root.resolve())}")
        elif anchor and (dest.is_dir() or dest.suffix != ".md"):
            problems.append(f"{where}: an anchor into something that is not a Markdown page")
        elif anchor and unquote(anchor) not in anchors(dest):
            problems.append(f"{where}: {dest.name} has no heading with the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    problems = broken_links(page)
    assert not problems, "\n".join(problems)


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## A `code` heading: yes\n\n## Again\n\n## Again\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n[ok](docs/other.md#a-code-heading-yes), [repeat](docs/other.md#again-1), [self](#title),\n"
        "[web](https://example.org/x.md), [folder](docs/).\n"
        "[missing](docs/nope.md) and [bad\nanchor](docs/other.md#again-2), `[in code](nope.md)`\n"
        "[outside](../elsewhere.md)\n\n```\n[in a block](nope.md)\n```\n[ref]: docs/gone.md\n"
    )
    problems = broken_links(page, tmp_path)
    assert [p.split(": (")[1].split(")")[0] for p in problems] == [
        "docs/nope.md", "docs/other.md#again-2", "../elsewhere.md", "docs/gone.md"]
    assert "README.md:5:" in problems[0] and "no such file docs/nope.md" in problems[0]
    assert "has no heading with the anchor #again-2" in problems[1]


def commands(page: Path) -> list[tuple[int, list[str]]]:
    """(line number, argv after ``shiftgrid``) of each command shown to be run: a line of a shell
    code block, or a row of a table whose first column is headed "command", that starts with
    ``shiftgrid``.

    Example:
        >>> [argv for _, argv in commands(ROOT / "README.md")][:2]
        [['main'], ['envs', '--splits']]
    """
    prose, code = split_fences(page.read_text(encoding="utf-8"))
    lines = [(n, line) for n, info, line in code if info in SHELL_BLOCKS]
    in_command_table = False
    for number, line in enumerate(prose.splitlines(), 1):
        if not line.startswith("|"):
            in_command_table = False
        elif re.match(r"^\|\s*command\s*\|", line):
            in_command_table = True
        elif in_command_table and (m := re.match(r"^\|\s*`([^`]*)`\s*\|", line)):
            lines.append((number, m.group(1)))
    found = []
    for number, line in lines:
        for part in line.split(";"):
            part = part.strip().removeprefix("$ ")
            if part.startswith("shiftgrid "):
                found.append((number, shlex.split(part, comments=True)[1:]))
    return found


@pytest.mark.parametrize("page", WRITTEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_parse(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shiftgrid.scripts.cli import build_parser

    parser = build_parser()
    problems = []
    for number, argv in commands(page):
        try:
            parser.parse_args(argv)
        except SystemExit:
            problems.append(f"{page.relative_to(ROOT)}:{number}: shiftgrid {shlex.join(argv)}\n  "
                            f"{capsys.readouterr().err.strip().splitlines()[-1]}")
    assert not problems, "\n".join(problems)


# ---- the README's commands, run at tiny budgets ------------------------------------------------------

#: README commands not run here, and why (every other command of the README's table is run below).
NOT_RUN = {
    ("benchmark", "efficiency"): "reads the runs of the efficiency sweeps (hours of training), which no line above writes",
    ("benchmark", "curriculum"): "reads the runs of the curriculum sweeps (hours of training), which no line above writes",
}
#: A small network, so that every training command takes seconds.
SMALL_EXTRACTOR = "extractor={cell_dim: 8, channels: 8, text_dim: 8, word_dim: 8, features_dim: 16}"
#: Flags appended to a README command to make it tiny (a later flag wins), by subcommand and learner.
TRAIN = ["--steps", "64", "--n-envs", "2", "--device", "cpu", "--no-progress", "--set", "eval.freq=0"]
TINY: dict[str, list[str]] = {
    "main": ["--steps", "64", "--episodes", "1", "--device", "cpu"],
    "envs": [],
    "check": ["--levels", "2", "--bot", "2"],
    "evaluate": ["--episodes", "2", "--splits", "id,size/far", "--reference-episodes", "1", "--n-envs", "1"],
    "demos": ["--episodes", "4", "--no-progress"],
    "sweep": [],  # its file is shrunk instead (see below)
    "wm train": ["--steps", "48", "--preset", "tiny", "--n-envs", "2", "--device", "cpu", "--no-progress", "--set",
                 "hyperparams={batch_size: 2, seq_len: 8, learning_starts: 16, train_ratio: 1, openloop_every: 0}"],
    "wm evaluate": ["--episodes", "2", "--splits", "id", "--horizons", "1,3", "--context", "2", "--n-envs", "2", "--no-progress"],
    "benchmark envs": ["--families", "GoTo", "--steps", "100", "--resets", "2", "--repeats", "1"],
    "benchmark world-model": ["--models", "rssm", "--presets", "tiny", "--steps", "100", "--repeats", "1", "--batch", "4",
                              "--horizon", "2", "--train-batch", "2x4", "--device", "cpu"],
    "benchmark sweep": ["--points", "1", "--repeats", "1", "--backends", "local"],
    "benchmark imitation": ["--demos", "2", "--seeds", "0", "--episodes", "2", "--updates", "2", "--device", "cpu"],
    "bank": ["--count", "8", "--workers", "1"],
    "benchmark engine": ["--families", "GoTo", "--batches", "8", "--compile-batches", "none", "--bank-size", "8",
                         "--steps", "100", "--repeats", "1"],
    "benchmark ppo": ["--networks", "cheap", "--repeats", "1", "--reference-steps", "1024", "--tensor-steps", "1024",
                      "--tensor-set", "n_envs=8", "--tensor-set", "hyperparams={n_steps: 16, batch_size: 64}",
                      "--tensor-set", "engine.bank_size=16"],
}
LEARNER_FLAGS = {
    "ppo": ["--set", SMALL_EXTRACTOR, "--set", "hyperparams={n_steps: 32, batch_size: 32, n_epochs: 1}"],
    "bc": ["--set", SMALL_EXTRACTOR, "--set", "hyperparams.batch_size=16"],
    "tensor-ppo": ["--set", "hyperparams={n_steps: 32, batch_size: 32, n_epochs: 1}", "--set", "engine.bank_size=16"],
    "dreamer": ["--set", "hyperparams={preset: tiny, batch_size: 4, seq_len: 8, prefill: 32, train_ratio: 4, "
                "replay_capacity: 1000, actor_critic: {hidden: 32, layers: 1}}"],
}
#: The shrunk copy of scripts/sweeps/ppo-goto.yaml the README's sweep command runs here (same path, relative).
TINY_SWEEP = {"name": "ppo-goto",
              "base": {"algo": "ppo", "env": "shiftgrid/GoTo-v1", "steps": 64, "n_envs": 2, "device": "cpu",
                       "set": ["eval.freq=0", SMALL_EXTRACTOR, "hyperparams={n_steps: 32, batch_size: 32, n_epochs: 1}"]},
              "grid": {"seed": [0, 1]},
              "evaluate": {"episodes": 2, "splits": ["id"], "n_envs": 1, "checkpoint": "latest", "reference_episodes": 1}}


def tiny(argv: list[str]) -> list[str]:
    """``argv`` with the flags that make it run in seconds appended (see :data:`TINY`)."""
    key = " ".join(argv[:2]) if argv[0] in ("wm", "benchmark") else argv[0]
    if key == "train":
        algo = argv[argv.index("--algo") + 1] if "--algo" in argv else "ppo"
        dream = ["--dream-anyway"] if "--dream" in argv else []  # a model of 48 steps cannot teach: the check warns
        return argv + TRAIN + LEARNER_FLAGS[algo] + dream
    return argv + TINY[key]


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    _, code = split_fences(text)
    blocks: dict[int, list[str]] = {}
    previous = None
    for number, info, line in code:
        if info != "python":
            continue
        start = number if previous is None or number != previous + 1 else next(reversed(blocks))
        blocks.setdefault(start, []).append(line)
        previous = number
    return ["\n".join(lines) for lines in blocks.values()]


@pytest.mark.slow
def test_the_readmes_quickstart_runs() -> None:
    blocks = readme_python_blocks()
    assert blocks, "the README has a Python quickstart"
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md quickstart", "exec"), namespace)
        for value in namespace.values():
            close = getattr(value, "close", None)
            if callable(close) and hasattr(value, "step") and not isinstance(value, type):
                close()


@pytest.mark.slow
def test_the_readmes_commands_run_in_order_at_tiny_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Every command of the README's table, as written plus flags that shrink it, in a fresh folder: each reads what a
    line above it wrote, as the README says. The sweep runs a shrunk copy of its file, at the same path."""
    import yaml
    from minigrid.wrappers import FlatObsWrapper
    from stable_baselines3 import PPO

    import gymnasium as gym
    from shiftgrid.scripts.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "scripts" / "sweeps").mkdir(parents=True)
    (tmp_path / "scripts" / "sweeps" / "ppo-goto.yaml").write_text(yaml.safe_dump(TINY_SWEEP))
    PPO("MlpPolicy", FlatObsWrapper(gym.make("shiftgrid/GoTo-v1")), n_steps=32, batch_size=32, seed=0,
        device="cpu").save("ppo_flat.zip")  # what the README's SB3 example writes (untrained here)
    ran, failed = [], []
    for number, argv in commands(ROOT / "README.md"):
        if tuple(argv[:2]) in NOT_RUN:
            continue
        code = main(tiny(argv))
        out, err = capsys.readouterr()
        ran.append(argv[:2])
        if code != 0:
            failed.append(f"README.md:{number}: shiftgrid {shlex.join(argv)} -> exit {code}: {err.strip()[-400:]}")
    assert not failed, "\n".join(failed)
    assert ["train", "--algo"] in ran and ["evaluate", "runs/goto/seed=0"] in ran and len(ran) >= 20
    assert (tmp_path / "runs" / "goto" / "eval" / "results.md").is_file()
