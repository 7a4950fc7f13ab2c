"""Sweeps: grids of seeds and configurations, run locally or on Ray."""
