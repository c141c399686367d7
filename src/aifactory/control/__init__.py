"""The control loop: the one process that turns scheduler decisions into running jobs."""
