"""The Slurm executor's foundation: Slurm's command-line tools as a typed client (`commands`),
and pure parsers of what they print (`parse`, with single values in `values`)."""
