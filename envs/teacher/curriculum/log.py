"""The level log: one JSON line per level a curriculum chose and a sub-env played, so a curriculum can be audited.

Each line: ``step`` (environment steps of the whole training vector env when the level started,
over the run's sessions; side estimates' steps not included), ``sub_env``, ``choice`` (the
sub-env's reset count in this session), ``level_seed`` (as played),
``requested_seed`` (as chosen; a seed whose level is inadmissible moves to the next one),
``level_hash``, ``factors``, ``replayed`` and ``score`` (the teacher's score of the level when it
chose it; null for new levels). The file is appended to, so a resumed run continues it.

Example:
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "teacher" / "levels.jsonl"
    >>> log = LevelLog(path)
    >>> log.write({"step": 0, "sub_env": 1, "level_seed": 7})
    >>> log.close(); [json.loads(line)["sub_env"] for line in path.read_text().splitlines()]
    [1]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Mapping

#: The level log's file name in the run dir's ``teacher/`` folder.
LEVELS_FILE = "levels.jsonl"


class LevelLog:
    """Append JSON lines to ``path`` (its folder and the file are created at the first line)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: IO[str] | None = None

    def write(self, record: Mapping[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", buffering=1)
        self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_levels(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a level log."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
