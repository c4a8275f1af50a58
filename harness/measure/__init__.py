"""Measurement helpers every layer uses: the timing loop, machine load, peak memory, the
environment (versions, threads, machine), and the timing protocol's statistics and records
(windows, bootstrap intervals, the A/A noise floor, verdicts)."""
