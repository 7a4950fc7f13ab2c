"""Benchmarks that read finished runs: sample efficiency, curricula, imitation."""
