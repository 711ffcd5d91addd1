"""``image bootstrap``: a Debian (or Ubuntu) root filesystem made by ``mmdebstrap``, as a tar
stream both engines import as a one-layer image.

::

    BootstrapSpec(suite, variant, include, mirror) ──check()──> one clear UsageError
        │ command(): mmdebstrap --mode=root|unshare --variant=V --format=tar [--include=…]
        │            --skip=output/dev  (no device nodes: the runtime makes /dev)
        │            --customize-hook: /etc/resolv.conf, /etc/hostname empty (not the host's)
        │            SUITE - [MIRROR]
        v
    run() ──stdout: the root as a tar──> the caller (extract, or import into dockerd)
          ──stderr "I: …" lines──> TransferEvent("mmdebstrap", "running apt-get update...")
          ──exit != 0──> BootstrapFailed(suite, why, kind): "suite" | "mirror" | "package" …

``SOURCE_DATE_EPOCH`` reaches mmdebstrap, which then makes the same files for the same
inputs and mirror content; the importer clamps mtimes and records the same "created", so the
image ID is the same too. As root mmdebstrap runs in its ``root`` mode; an ordinary user's run
uses ``unshare`` mode (a user namespace with the user's subordinate id range, no root needed).
Lives in ``commands`` because both engines use it (the docker backend imports the tar into
dockerd); it imports nothing of either.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from ipydock.errors import BootstrapFailed, UsageError
from ipydock.models import TransferEvent

__all__ = ["VARIANTS", "BootstrapSpec", "run"]

VARIANTS = ("extract", "custom", "essential", "apt", "required", "minbase", "buildd",
            "important", "debootstrap", "standard")  # fmt: skip
ROW = "mmdebstrap"  # the progress row of the bootstrap itself
_SUITE = re.compile(r"^[a-z][a-z0-9.-]{0,63}$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$")
_MIRROR = re.compile(r"^(https?|file)://\S+$")
# The host's copies are not for an image: empty files (a container's are mounted over them)
_HOOK = 'cd "$1/etc" && rm -f resolv.conf hostname && touch resolv.conf hostname'
Progress = Callable[[TransferEvent], None]
_QUIET = (
    "chroot architecture",
    "finding correct",
    "using /",
    "removing tempdir",
    "running --",
    "skipping output/dev",
    "automatically chosen",
    "done",
)  # its details, not steps


@dataclass(frozen=True)
class BootstrapSpec:
    """What to bootstrap; ``history`` is the image's history line (the mirror is where the
    packages came from, not what went in: it is not part of it)."""

    suite: str = "bookworm"
    variant: str = "minbase"
    include: tuple[str, ...] = ()
    mirror: str | None = None

    @classmethod
    def parse(
        cls, suite: str | None, variant: str | None, include: str | list[str] | None,
        mirror: str | None,
    ) -> BootstrapSpec:  # fmt: skip
        """From the flags' words (``--include a,b --include c``), checked."""
        items = [include] if isinstance(include, str) else list(include or [])
        packages = tuple(p.strip() for item in items for p in item.split(",") if p.strip())
        spec = cls(suite or "bookworm", variant or "minbase", packages, mirror or None)
        spec.check()
        return spec

    def check(self) -> None:
        if not _SUITE.match(self.suite):
            raise UsageError(f"invalid suite {self.suite!r}: use a codename such as bookworm")
        if self.variant not in VARIANTS:
            raise UsageError(f"invalid variant {self.variant!r}: use one of {', '.join(VARIANTS)}")
        for p in self.include:
            if not _PACKAGE.match(p):
                raise UsageError(f"invalid package name {p!r} in --include")
        if self.mirror is not None and not _MIRROR.match(self.mirror):
            raise UsageError(
                f"invalid mirror {self.mirror!r}: use a URL such as http://deb.debian.org/debian"
            )

    @property
    def history(self) -> str:
        return " ".join(["bootstrap", self.suite, self.variant, *(f"+{p}" for p in self.include)])

    def command(self, mode: str) -> list[str]:
        cmd = ["mmdebstrap", f"--mode={mode}", f"--variant={self.variant}", "--format=tar"]
        if self.include:
            cmd.append("--include=" + ",".join(self.include))
        cmd += ["--skip=output/dev", f"--customize-hook={_HOOK}", self.suite, "-"]
        return cmd + ([self.mirror] if self.mirror else [])


def _mode() -> str:
    """``root`` as root; else ``unshare``, which needs the user's subordinate id ranges."""
    if os.geteuid() == 0:
        return "root"
    import pwd

    user = pwd.getpwuid(os.geteuid()).pw_name
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                owners = {line.split(":")[0] for line in f if line.count(":") == 2}
        except OSError:
            owners = set()
        if user not in owners and str(os.geteuid()) not in owners:
            raise BootstrapFailed(
                "", f"an ordinary user's bootstrap needs a subordinate id range for {user} "
                f"in {path} (ask an admin: usermod --add-subuids 100000-165535 "
                f"--add-subgids 100000-165535 {user})", "setup")  # fmt: skip
    if shutil.which("newuidmap") is None:
        raise BootstrapFailed("", "newuidmap is not installed: apt-get install uidmap", "setup")
    return "unshare"


@contextlib.contextmanager
def run(spec: BootstrapSpec, progress: Progress | None = None) -> Iterator[IO[bytes]]:
    """Run mmdebstrap; yields its stdout (the root filesystem as a tar). On leaving, the
    stream is drained and the exit checked: a failed run raises :class:`BootstrapFailed`
    (also when the reader failed first on the cut-short tar); an error of the reader stops
    mmdebstrap (it removes its temp dir on SIGTERM)."""
    spec.check()
    if shutil.which("mmdebstrap") is None:
        raise BootstrapFailed(spec.suite, "mmdebstrap is not installed: apt-get install "
                              "mmdebstrap (scripts/setup.sh does)", "setup")  # fmt: skip
    emit = progress or (lambda event: None)
    emit(TransferEvent("", "", text=spec.history))
    try:
        proc = subprocess.Popen(
            spec.command(_mode()), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise BootstrapFailed(spec.suite, f"mmdebstrap did not start ({exc})", "setup") from exc
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=_read_log, args=(proc.stderr, lines, emit), daemon=True)
    reader.start()
    try:
        yield proc.stdout
        while proc.stdout.read(1 << 16):  # the tar's padding after its end
            pass
    except BaseException as exc:
        said = len(lines)  # what mmdebstrap had said before it was stopped
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        else:
            said = -1
        proc.stdout.close()  # its tar writer gets EPIPE, not a full pipe nobody reads
        try:
            proc.wait(timeout=60)  # it removes its temp dir on SIGTERM
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=60)  # its log: ended with the last holder of its stderr
        # mmdebstrap failed on its own (the reader then saw a cut-short tar): its cause is
        # the news; stopped by us because the reader failed (a full disk…): the reader's is
        before = lines if said < 0 else lines[:said]
        errors = any(x.startswith("E: ") for x in before)
        failed = proc.returncode != 0 and (said < 0 or errors)
        if failed and not isinstance(exc, KeyboardInterrupt):
            raise BootstrapFailed(spec.suite, why(spec, before), kind(before)) from exc
        raise
    finally:
        proc.stdout.close()
    proc.wait()
    reader.join()
    if proc.returncode != 0:
        raise BootstrapFailed(spec.suite, why(spec, lines), kind(lines))


def _read_log(stream: IO[bytes], lines: list[str], emit: Progress) -> None:
    """mmdebstrap's stderr: ``I: step...`` lines are progress; all are kept for the error."""
    for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        if line.startswith("I: ") and not line[3:].startswith(_QUIET):
            emit(TransferEvent(ROW, line[3:].strip()))
    stream.close()


def kind(lines: list[str]) -> str:
    """What went wrong, from mmdebstrap's (and apt's) messages: ``suite`` (no Release file at
    the mirror), ``mirror`` (no answer), ``package`` (an --include not found), else ``other``."""
    text = "\n".join(lines)
    if "does not have a Release file" in text or "Unable to find a mirror for suite" in text:
        return "suite"
    if re.search(r"Could not (connect|resolve)|Connection (timed out|failed)|Temporary "
                 r"failure resolving|Failed to fetch", text):  # fmt: skip
        return "mirror"
    if "Unable to locate package" in text or "has no installation candidate" in text:
        return "package"
    return "other"


def why(spec: BootstrapSpec, lines: list[str]) -> str:
    """One line for the user: the cause in their words and what to do."""
    where = spec.mirror or "the default mirror"
    found = kind(lines)
    if found == "suite":
        return f"suite {spec.suite!r} does not exist at {where} (check the codename: bookworm, " \
               "trixie, jammy…)"  # fmt: skip
    errors = [x[3:].strip() for x in lines if x.startswith("E: ")]
    if found == "mirror":
        detail = next((e for e in errors if "Failed to fetch" in e or "Could not" in e), "")
        return f"the mirror {where} does not answer ({detail or 'no connection'}); check " \
               "--mirror and the network"  # fmt: skip
    if found == "package":
        missing = [m for line in lines
                   for m in re.findall(r"Unable to locate package (\S+)", line)]  # fmt: skip
        return f"package {', '.join(missing) or '?'} not found in {spec.suite}: check --include"
    useful = [e for e in errors if not e.startswith(("mmdebstrap failed", "apt-get "))]
    return (useful or errors or ["mmdebstrap failed (no message)"])[0]
