"""shiftgrid.world_models."""
