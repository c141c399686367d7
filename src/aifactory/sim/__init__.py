"""Trace replay: drive the live scheduler's `schedule()` over a recorded workload.

The simulator alone knows each job's true runtime; the scheduler sees only what a facility
would (spec, user time limit, submit time, what runs) — the same `Snapshot` as live.
"""
