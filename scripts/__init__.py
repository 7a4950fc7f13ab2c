"""shiftgrid.scripts."""
