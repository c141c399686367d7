"""Runs on a Slurm node, as the project's identity, in a step of the job: joins the sandbox of
the process `PID` and runs a command there. Standalone (the node's own python3, no aifactory):
`python3 -I -c SOURCE PID SANDBOX_ARGS TTY COMMAND...`, with srun's bare environment.

The process must be of this very job (its control group names `job_<SLURM_JOB_ID>`): the PID
comes from a record the identity can write, so it could name another job of the same project.
bubblewrap, as an unprivileged user with --disable-userns, makes two user namespaces: the
outer one owns the sandbox's other namespaces (mount, PID, network, IPC, UTS, cgroup) and its
processes live in an inner one, in which no more user namespaces can be made. nsenter joins
only the inner one, where the identity holds no rights over the others, so this goes in as
bubblewrap did: the outer user namespace (the identity owns it), the sandbox's namespaces,
then the inner one, the sandbox's root. A namespace that is the node's own (the network, for
a job with network: open) is not joined: it is joined already. A sandbox of another user
cannot be joined: the kernel refuses its namespaces.

The command is then a child (the PID namespace takes new processes only) with the sandbox's
environment and working directory, read from bubblewrap's options the facility wrote
(`SANDBOX_ARGS`) and Slurm's variables of the batch step; given to the command's exec alone,
never to anything before it. Everything of the process is read through one descriptor of its
/proc directory: a PID recycled meanwhile is never another process's. It gets no new
privileges, default signals, and with `TTY` a session of its own with the terminal (srun's
--pty); it keeps the identity's uid, so its exec leaves it no capabilities.
"""

import contextlib
import ctypes
import fcntl
import os
import signal
import sys
import termios

NS_GET_PARENT = 0xB702  # ioctl: the user namespace that owns this one
PR_SET_NO_NEW_PRIVS = 38
KINDS = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # mnt last: the paths above stay valid
FROM_NODE = ("SLURM_", "SLURMD_", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")
MAX_ARGS = 4 * 1024 * 1024
PASSED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # srun's, passed on


def sandbox_settings(options: bytes) -> tuple[dict[str, str], str]:
    """`--setenv K V` and `--chdir D` in bubblewrap's NUL-separated options."""
    words = options.decode("utf-8", "replace").split("\0")
    env: dict[str, str] = {}
    cwd = "/"
    i = 0
    while i < len(words):
        if words[i] == "--setenv" and i + 2 < len(words):
            env[words[i + 1]] = words[i + 2]
            i += 3
        elif words[i] == "--chdir" and i + 1 < len(words):
            cwd = words[i + 1]
            i += 2
        else:
            i += 1
    return env, cwd


def node_variables(proc: int) -> dict[str, str]:
    """Slurm's variables of the batch step (its GPUs), as the batch script passed them in."""
    with os.fdopen(os.open("environ", os.O_RDONLY, dir_fd=proc), "rb") as environ:
        pairs = environ.read(MAX_ARGS).split(b"\0")
    found = {}
    for pair in pairs:
        name, _, value = pair.decode("utf-8", "replace").partition("=")
        if name.startswith(FROM_NODE):
            found[name] = value
    return found


def main(pid: str, options_path: str, tty: bool, command: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)

    def join(fd: int) -> None:
        if libc.setns(fd, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"cannot join the job's sandbox: {os.strerror(error)}")

    if not command:
        raise OSError("no command")
    job = os.environ.get("SLURM_JOB_ID", "")
    proc = os.open(f"/proc/{int(pid)}", os.O_RDONLY | os.O_DIRECTORY)
    with os.fdopen(os.open("cgroup", os.O_RDONLY, dir_fd=proc)) as groups:
        if not job.isdigit() or f"/job_{job}/" not in groups.read():
            raise OSError(f"process {pid} is not of this job")
    with open(options_path, "rb") as recorded:
        env, cwd = sandbox_settings(recorded.read(MAX_ARGS))
    env = {**env, **node_variables(proc)}  # Slurm's win, as in the batch script
    if tty:
        env.setdefault("TERM", "xterm-256color")
    inner = os.open("ns/user", os.O_RDONLY, dir_fd=proc)
    outer = fcntl.ioctl(inner, NS_GET_PARENT)
    others = [
        os.open(f"ns/{kind}", os.O_RDONLY, dir_fd=proc)
        for kind in KINDS
        if os.stat(f"ns/{kind}", dir_fd=proc).st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino
    ]
    root = os.open("root", os.O_RDONLY | os.O_DIRECTORY, dir_fd=proc)
    for fd in (outer, *others, inner):
        join(fd)
    os.fchdir(root)
    os.chroot(".")
    for fd in (inner, outer, *others, root, proc):
        os.close(fd)
    if tty:  # the command's own session takes the terminal
        before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        fcntl.ioctl(0, termios.TIOCNOTTY)
        signal.signal(signal.SIGHUP, before)
    signal.pthread_sigmask(signal.SIG_BLOCK, PASSED)  # none lost between fork and handlers
    child = os.fork()
    if child == 0:
        for number in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
            with contextlib.suppress(OSError, ValueError):  # the real-time ones glibc keeps
                signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if tty:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            os._exit(126)
        os.chdir(cwd)
        try:
            os.execvpe(command[0], command, env)  # noqa: S606 - no shell: the argv as given
        except OSError as exc:
            print(f"aifactory: {command[0]}: {exc.strerror}", file=sys.stderr)
            os._exit(127)

    def pass_on(sent: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, sent)  # not reaped yet (WNOWAIT below): still this child's PID

    for number in PASSED:
        signal.signal(number, pass_on)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, PASSED)
    while True:
        try:
            os.waitid(os.P_PID, child, os.WEXITED | os.WNOWAIT)
            break
        except InterruptedError:
            continue
    signal.pthread_sigmask(signal.SIG_BLOCK, PASSED)  # then reaped: nothing sent after
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # killed by a signal: as a shell says it


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]))
    except OSError as exc:
        print(f"aifactory: {exc}", file=sys.stderr)
        sys.exit(126)
