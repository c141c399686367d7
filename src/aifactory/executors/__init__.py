"""Executors run admitted jobs: `local` (subprocesses on this machine), later `slurm`."""
