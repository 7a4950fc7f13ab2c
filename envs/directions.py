"""The agent's four directions as grid steps, in minigrid's order (``agent_dir`` 0..3: right, down, left, up).

Derived from minigrid's own table, so there is one definition of which way each direction points.

Example:
    >>> DIRECTIONS[0], DIRECTIONS[3]
    ((1, 0), (0, -1))
"""

from __future__ import annotations

from minigrid.core.constants import DIR_TO_VEC

#: ``(dx, dy)`` of each ``agent_dir``, as plain ints (for hot loops and hashing).
DIRECTIONS: tuple[tuple[int, int], ...] = tuple((int(dx), int(dy)) for dx, dy in DIR_TO_VEC)
