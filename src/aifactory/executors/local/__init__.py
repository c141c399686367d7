"""Run jobs as real subprocesses on this machine, each under its own small supervisor."""
