"""The sandbox every attempt runs in, on every executor (DESIGN §8; docs/sandbox.md).

A job is untrusted code. Each attempt runs under its project's own unprivileged identity
(`identity`), in a world of its own made by bubblewrap (`spec`, `launcher`): read-only system
software and interpreter (`software`), its own directory, /tmp and working directory read-write,
the dataset versions it was granted read-only, its GPUs' device nodes and nothing else; its own
PID, IPC, UTS, cgroup and (by default) network namespaces. The kernel holds its memory, process
count and CPUs (`cgroups`); everything it starts ends with it.
"""
