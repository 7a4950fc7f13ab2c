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
