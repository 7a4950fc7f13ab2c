"""Evaluation on shift splits: the episode loop, the Python API, statistics, reports, reference policies, world models under shift."""
