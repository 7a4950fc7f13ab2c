"""Shift reports of trained runs: runs loaded from disk, checked to belong together, evaluated, reported."""
