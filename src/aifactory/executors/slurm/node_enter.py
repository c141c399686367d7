"""Runs on a Slurm node, as the project's identity, in a step of the job: joins the sandbox of
the process `PID` and runs a command there. Standalone (the node's own python3, no aifactory):
`python3 -I -c SOURCE PID CWD COMMAND...`.

bubblewrap, as an unprivileged user with --disable-userns, makes two user namespaces: the
outer one owns the sandbox's other namespaces (mount, PID, network, IPC, UTS, cgroup) and its
processes live in an inner one, in which no more user namespaces can be made. nsenter joins
only the inner one, where the identity holds no rights over the others, so this goes in as
bubblewrap did: the outer user namespace (the identity owns it), the sandbox's namespaces,
then the inner one, the sandbox's root and the working directory. A namespace that is the
node's own (the network, for a job with network: open) is not joined: it is joined already.
The command is then a child (the PID namespace takes new processes only), with no new
privileges, and a terminal (srun's --pty) is given up for the command's own session; it keeps
the identity's uid, so its exec leaves it no capabilities. A sandbox of
another user cannot be joined: the kernel refuses its namespaces.
"""

import ctypes
import fcntl
import os
import signal
import sys
import termios

NS_GET_PARENT = 0xB702  # ioctl: the user namespace that owns this one
KINDS = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # mnt last: the paths above stay valid


def main(pid: str, cwd: str, command: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)

    def join(fd: int) -> None:
        if libc.setns(fd, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"cannot join the job's sandbox: {os.strerror(error)}")

    inner = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
    outer = fcntl.ioctl(inner, NS_GET_PARENT)
    others = [
        os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
        for kind in KINDS
        if os.stat(f"/proc/{pid}/ns/{kind}").st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino
    ]
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    for fd in (outer, *others, inner):
        join(fd)
    os.fchdir(root)
    os.chroot(".")
    os.chdir("/")
    for fd in (inner, outer, *others, root):
        os.close(fd)
    if os.isatty(0):  # srun's --pty: the command's session takes the terminal (setsid --ctty)
        before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        fcntl.ioctl(0, termios.TIOCNOTTY)
        signal.signal(signal.SIGHUP, before)
    child = os.fork()
    if child == 0:
        argv = ["/usr/bin/setpriv", "--no-new-privs", "--", "/usr/bin/env", f"--chdir={cwd}"]
        os.execv(argv[0], [*argv, "--", *command])  # noqa: S606 - no shell: the argv as given
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # srun's, passed on
        signal.signal(number, lambda sent, _frame: os.kill(child, sent))
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except InterruptedError:
            continue
        code = os.waitstatus_to_exitcode(status)
        return code if code >= 0 else 128 - code  # killed by a signal: as a shell says it


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
    except OSError as exc:
        print(f"aifactory: {exc}", file=sys.stderr)
        sys.exit(126)
