"""A container's pseudo-terminal: made inside its own devpts, the master handed out by fd.

As runc does with ``--console-socket`` (and crun, and conmon which holds the master for
Podman), the terminal is made by the container's process itself, after ``pivot_root``, from the
container's ``/dev/ptmx`` (its own devpts instance): the slave is then a real ``/dev/pts/N``
inside the container (``tty`` prints it, job control works), the host's devpts is never used.
Only the master leaves the container, over a unix socket, with ``SCM_RIGHTS``::

    spawner (supervisor / exec caller)          child (pid 1, or an exec's process)
    ----------------------------------          ------------------------------------------
    socketpair(SEQPACKET) -- one end -------->  open /dev/ptmx (O_NOCTTY), unlock, TIOCGPTN
                                                open /dev/pts/N; window size; chown to the user
                                                bind /dev/pts/N on /dev/console (pid 1 only)
    recv_master() <---- "terminal" + master --- send_master()
    keeps the master: reads the output,         setsid(); TIOCSCTTY; dup2 slave -> 0, 1, 2
    writes input, sets the window size          ... exec the command

The child side runs between ``fork`` and ``exec`` and only calls ``os``/``fcntl``; the socket
module is imported by the parent before it forks. The window size ioctls are here too, for the
engine's terminal handle and for the CLI.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

__all__ = ["get_size", "recv_master", "set_size", "setup_in_child", "socketpair"]

_TIOCGPTN = 0x80045430
_TIOCSPTLCK = 0x40045431
_MARK = b"terminal"


def get_size(fd: int) -> tuple[int, int]:
    """(rows, cols) of the terminal ``fd``; (0, 0) when it has none."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    except OSError:
        return 0, 0
    return rows, cols


def set_size(fd: int, rows: int, cols: int) -> None:
    """Set the window size; the kernel sends SIGWINCH to the terminal's foreground group."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def socketpair() -> tuple[socket.socket, socket.socket]:
    """(parent's end, child's end) for one master; call before fork."""
    import socket

    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)


def recv_master(sock: socket.socket) -> int:
    """The master fd the child sent; raises OSError if it sent none (it failed first)."""
    import socket

    data, fds, _flags, _addr = socket.recv_fds(sock, 64, 1)
    if data != _MARK or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OSError(0, "the container's process sent no terminal")
    return fds[0]


def setup_in_child(sock_fd: int, size: tuple[int, int], uid: int, console: bool) -> None:
    """In the forked child, inside the container's root: make the terminal, send the master
    over ``sock_fd``, and make the slave the controlling terminal and stdio of this process
    (a new session). ``console``: also bind it on ``/dev/console``, as runc does for pid 1."""
    import socket  # imported by the parent before the fork: no file is read here

    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    (number,) = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, bytes(4)))
    path = f"/dev/pts/{number}"
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY)
    if size[0] > 0 and size[1] > 0:
        set_size(slave, *size)
    if uid != 0:
        os.fchown(slave, uid, -1)  # the user controls its own terminal (runc: stdio owner)
    if console:
        _bind_console(path)
    with socket.socket(fileno=os.dup(sock_fd)) as sock:
        socket.send_fds(sock, [_MARK], [master])
    os.close(sock_fd)
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def _bind_console(path: str) -> None:
    from ipydock.engine.runtime.plan import MS_BIND
    from ipydock.engine.runtime.spawn import mount

    if not os.path.lexists("/dev/console"):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    mount(path, "/dev/console", None, MS_BIND)
