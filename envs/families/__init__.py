"""Built-in families: one module each (factors + generator).

``BUILTIN_FAMILIES`` are the current versions; ``SUPERSEDED_FAMILIES`` are older versions kept
registered so that results measured on them can be reproduced (gymnasium warns that they are
out of date when one is made).
"""

from shiftgrid.envs.families import doorkey, goto, maze, pickup, putnext, sequence

BUILTIN_FAMILIES = (goto.FAMILY, pickup.FAMILY, putnext.FAMILY, doorkey.FAMILY, maze.FAMILY, sequence.FAMILY)
SUPERSEDED_FAMILIES = (goto.FAMILY_V0, pickup.FAMILY_V0, putnext.FAMILY_V0, doorkey.FAMILY_V0, maze.FAMILY_V0, sequence.FAMILY_V0)
