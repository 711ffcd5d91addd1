"""Run the CLI and SIGKILL it at its N-th store write: ``crasher.py N ROOT CLI-ARGS…``.

A store write is a file-system change under ROOT as the Python audit hook sees it: a file opened
for writing (the data before its fsync), a rename (the commit points), mkdir, remove, rmdir,
link, symlink, truncate, chmod, utime, setxattr. The process kills itself before the N-th one
happens. N = 0 counts: the writes are listed on stderr (``WRITES event,event,…``) at exit.
"""

import os
import signal
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
EVENTS = {"os.rename", "os.mkdir", "os.remove", "os.rmdir", "os.link", "os.symlink",
          "os.truncate", "os.chmod", "os.utime", "os.setxattr", "os.removexattr",
          "shutil.rmtree", "os.chown"}  # fmt: skip


def main() -> None:
    kill_at = int(sys.argv[1])
    root = os.path.abspath(sys.argv[2]).encode()
    seen: list[str] = []

    def under_root(path: object) -> bool:
        if isinstance(path, str):
            path = path.encode("utf-8", "surrogateescape")
        if not isinstance(path, bytes):
            return False
        return os.path.abspath(path).startswith(root)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if not writing or not under_root(path):
                return
        elif event in EVENTS:
            if not args or not under_root(args[0]):
                return
        else:
            return
        seen.append(event)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    import atexit

    atexit.register(lambda: sys.stderr.write("\nWRITES " + ",".join(seen) + "\n"))
    from ipydock.cli import main as cli

    sys.exit(cli(["--root", sys.argv[2], *sys.argv[3:]]))


if __name__ == "__main__":
    main()
