"""shiftgrid.envs.shift."""
