"""shiftgrid.agents."""
