"""Built-in families: one module each (factors + generator)."""

from shiftgrid.envs.families import doorkey, goto, maze, pickup, putnext, sequence

BUILTIN_FAMILIES = (goto.FAMILY, pickup.FAMILY, putnext.FAMILY, doorkey.FAMILY, maze.FAMILY, sequence.FAMILY)
