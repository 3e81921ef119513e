"""Benchmarks behind ``tarcza bench AREA``: each measures Tarcza next to a baseline from the same run."""
