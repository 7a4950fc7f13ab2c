"""Built-in families: one module each (factors + generator)."""

from shiftgrid.envs.families import doorkey, goto, pickup, putnext, sequence

BUILTIN_FAMILIES = (goto.FAMILY, pickup.FAMILY, putnext.FAMILY, doorkey.FAMILY, sequence.FAMILY)
