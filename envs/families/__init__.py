"""Built-in families: one module each (factors + generator)."""

from shiftgrid.envs.families import goto, pickup

BUILTIN_FAMILIES = (goto.FAMILY, pickup.FAMILY)
