"""Snapshot drivers: a layer's tar diff <-> its snapshot directory, and what to mount for a stack.

::

                   create(dest, parent, tar)                       lower_dirs(chain)
    tar diff  ------------------------------->  snapshot dir  ------------------------>  runtime
              <-------------------------------
                   export(dest, parent)

    overlay   dest = this layer only               [base, l2, l3]   all, bottom first
              (.wh. -> 0/0 char dev, opaque xattr)
    fuse-     dest = this layer only               [base, l2, l3]   all, mounted by the
    overlayfs (.wh. files kept as the tar has them)                 fuse-overlayfs program
    vfs       dest = cp -a parent + diff applied   [l3]             the top: a full root
              (.wh. -> deleted); export compares dest with parent, entry by entry

A store uses one driver for all its snapshots (they differ on disk). ``choose_driver`` picks
overlay where a real overlay mount works under the store (for an ordinary user: in a user
namespace of its own), fuse-overlayfs where the kernel refuses that but the program mounts
(Linux < 5.11, a store on overlayfs as in a container's root, filesystems overlayfs cannot
use), vfs where neither works; it says why, for ``info``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
import tempfile
from typing import BinaryIO, NamedTuple, Protocol

from ipydock.engine.store.fsutil import remove_tree
from ipydock.engine.store.layerfmt import USER_OPAQUE_XATTR
from ipydock.engine.store.layertar import (
    OPAQUE_XATTR,
    WHITEOUT_PREFIX,
    ApplyResult,
    LayerWriter,
    apply_tar,
    kept_xattrs,
    write_tar,
)
from ipydock.errors import NoSpace

__all__ = [
    "LAYERED",
    "FuseOverlayDriver",
    "OverlayDriver",
    "SnapshotDriver",
    "VfsDriver",
    "choose_driver",
    "default_driver",
    "fuse_overlay_problem",
    "get_driver",
    "overlay_supported",
]

_CHUNK = 1 << 20


class SnapshotDriver(Protocol):
    """How snapshots are laid out; every implementation passes ``tests/store/test_snapshots``."""

    name: str

    def create(
        self, dest: str, parent: str | None, stream: BinaryIO, *, source: str
    ) -> ApplyResult:
        """Make the new directory ``dest`` from snapshot ``parent`` (None: a base layer) plus
        the uncompressed tar diff ``stream``. Errors as ``apply_tar``; the caller removes
        ``dest`` on error (it builds in a temp dir and renames)."""
        ...

    def export(
        self, dest: str, parent: str | None, out: BinaryIO, *, mtime_clamp: int | None = None
    ) -> ApplyResult:
        """Write the tar diff of ``dest`` against ``parent``, normalised as ``write_tar``."""
        ...

    def lower_dirs(self, chain: list[str]) -> list[str]:
        """The dirs to mount for the snapshot stack ``chain`` (bottom first), bottom first."""
        ...


class OverlayDriver:
    """Each snapshot holds only its layer's files; overlayfs stacks them at mount time."""

    name = "overlay"

    def __init__(self, *, rootless: bool = False) -> None:
        self.rootless = rootless

    def create(
        self, dest: str, parent: str | None, stream: BinaryIO, *, source: str
    ) -> ApplyResult:
        _make_root(dest)
        return apply_tar(stream, dest, source=source, whiteouts="overlay")

    def export(
        self, dest: str, parent: str | None, out: BinaryIO, *, mtime_clamp: int | None = None
    ) -> ApplyResult:
        return write_tar(dest, out, whiteouts="overlay", mtime_clamp=mtime_clamp)

    def lower_dirs(self, chain: list[str]) -> list[str]:
        return list(chain)


class FuseOverlayDriver(OverlayDriver):
    """Snapshots as overlay's (each layer its own files), stacked by ``fuse-overlayfs`` in the
    container's namespaces where the kernel will not mount overlayfs for the user. Whiteouts
    and opaque dirs are kept as the tar has them (empty ``.wh.`` files, which fuse-overlayfs
    reads): no mknod, so any filesystem that holds files will do, overlayfs included."""

    name = "fuse-overlayfs"

    def create(
        self, dest: str, parent: str | None, stream: BinaryIO, *, source: str
    ) -> ApplyResult:
        _make_root(dest)
        return apply_tar(stream, dest, source=source, whiteouts="files")  # type: ignore[arg-type]


#: Drivers whose snapshots hold one layer each, stacked at mount time (a RUN's or a
#: container's upper dir becomes a snapshot as it is).
LAYERED = ("overlay", "fuse-overlayfs")


class VfsDriver:
    """Each snapshot is a full root: a real copy of its parent with the diff applied.

    Works on any filesystem and without privileges, at the cost of disk space and a copy per
    layer; the diff of a snapshot is recomputed by comparing it with its parent.
    """

    name = "vfs"

    def __init__(self, *, rootless: bool = False) -> None:
        self.rootless = rootless

    def create(
        self, dest: str, parent: str | None, stream: BinaryIO, *, source: str
    ) -> ApplyResult:
        if parent is None:
            _make_root(dest)
        else:
            copy_tree(parent, dest)
        return apply_tar(stream, dest, source=source, whiteouts="delete")

    def export(
        self, dest: str, parent: str | None, out: BinaryIO, *, mtime_clamp: int | None = None
    ) -> ApplyResult:
        """Added and changed entries of ``dest`` (type, mode, owner, size, mtime, content,
        symlink target, xattrs), a directory whenever something below it changed, and one
        ``.wh.`` whiteout per removed entry (a removed directory's children get none)."""
        if parent is None:
            return write_tar(dest, out, whiteouts="none", mtime_clamp=mtime_clamp)
        from ipydock.engine.store import userns

        if userns.delegates():  # rootless with id ranges: files of the range's owners
            return userns.vfs_export(dest, parent, out, mtime_clamp)
        changes: list[_Change] = []
        _diff_dir("", dest, parent, changes)
        writer = LayerWriter(out, mtime_clamp=mtime_clamp)
        for change in changes:
            change.write(writer)
        return writer.close()

    def lower_dirs(self, chain: list[str]) -> list[str]:
        return chain[-1:]


_DRIVERS: dict[str, type[OverlayDriver] | type[VfsDriver]] = {
    "overlay": OverlayDriver,
    "fuse-overlayfs": FuseOverlayDriver,
    "vfs": VfsDriver,
}


def get_driver(name: str, *, rootless: bool = False) -> SnapshotDriver:
    """The driver called ``name`` ("overlay", "fuse-overlayfs" or "vfs"); ValueError names the
    choices."""
    try:
        return _DRIVERS[name](rootless=rootless)
    except KeyError:
        choices = ", ".join(sorted(_DRIVERS))
        raise ValueError(f"unknown snapshot driver {name!r} (choose one of: {choices})") from None


def default_driver(probe_dir: str, *, rootless: bool = False) -> SnapshotDriver:
    """The driver :func:`choose_driver` picks; ``probe_dir`` is in the store."""
    return get_driver(choose_driver(probe_dir)[0], rootless=rootless)


def choose_driver(probe_dir: str) -> tuple[str, str]:
    """(driver, why) for a new store whose temp dir is ``probe_dir``: overlay where the
    kernel mounts it there (root; an ordinary user: in a user namespace of its own),
    fuse-overlayfs where it does not and the program does, vfs where neither works."""
    who = "root" if os.geteuid() == 0 else "in the user's own user namespace"
    if overlay_supported(probe_dir):
        return "overlay", f"the kernel mounts overlayfs on this filesystem ({who})"
    refused = f"the kernel refuses overlayfs on this filesystem ({who})"
    problem = fuse_overlay_problem(probe_dir)
    if not problem:
        return "fuse-overlayfs", f"{refused}; fuse-overlayfs mounts it"
    return "vfs", f"{refused}, and {problem}: every layer is a full copy"


# --------------------------------------------------------------------------- helpers


def _make_root(dest: str) -> None:
    try:
        os.mkdir(dest, 0o755)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(dest) from e
        raise


def copy_tree(src: str, dest: str) -> None:
    """Copy directory ``src`` to the new ``dest`` exactly: owners, modes, xattrs, devices,
    mtimes, and hardlinks within the tree; nothing is hardlinked to ``src``.

    One ``cp -a`` per snapshot rather than a Python walk: GNU cp copies data in C with
    copy_file_range and, with ``--reflink=auto``, shares blocks copy-on-write on btrfs/xfs,
    without the interpreter's per-file cost; a vfs snapshot is a whole root filesystem.
    """
    from ipydock.engine.store import userns

    if userns.delegates():  # the range's owners are kept only inside the user's namespace
        userns.copy_tree(src, dest)
        return
    argv = ["cp", "-a", "--reflink=auto", "--no-target-directory", "--", src, dest]
    proc = subprocess.run(argv, capture_output=True, env={**os.environ, "LC_ALL": "C"})
    if proc.returncode == 0:
        return
    why = proc.stderr.decode(errors="replace").strip()
    if any(os.strerror(code) in why for code in (errno.ENOSPC, errno.EDQUOT)):
        raise NoSpace(dest)
    raise OSError(errno.EIO, f"cp -a {src} {dest} failed: {why}", dest)


class _Change(NamedTuple):
    """One entry of a vfs diff, in tar order."""

    kind: str  # "entry", "tree" (a new directory and all below it), "whiteout"
    rel: str  # the entry's path; for a whiteout the directory that lost ``path``'s name
    path: str  # file in the new tree; for a whiteout the removed name
    st: os.stat_result | None = None
    xattrs: dict[str, bytes] | None = None

    def write(self, writer: LayerWriter) -> None:
        if self.kind == "whiteout":
            writer.whiteout(self.rel, self.path)
            return
        assert self.st is not None
        writer.add(self.rel, self.path, self.st, self.xattrs)
        if self.kind == "tree":
            writer.add_tree(self.rel, self.path, overlay=False)


def _listing(path: str) -> dict[str, os.stat_result]:
    with os.scandir(path) as it:
        return {e.name: e.stat(follow_symlinks=False) for e in it}


def _diff_dir(rel: str, new_dir: str, old_dir: str, out: list[_Change]) -> bool:
    """Append the changes below directory ``rel`` to ``out`` in tar order; True if any.

    Recursive: one level per directory depth, far below Python's limit for real roots.
    """
    new, old = _listing(new_dir), _listing(old_dir)
    order = [(os.fsencode(n), n) for n in new]
    order += [(os.fsencode(WHITEOUT_PREFIX + n), n) for n in old if n not in new]
    order.sort()
    start = len(out)
    for _, name in order:
        child, new_path = f"{rel}/{name}" if rel else name, f"{new_dir}/{name}"
        nst, ost = new.get(name), old.get(name)
        if nst is None:
            out.append(_Change("whiteout", rel, name))
            continue
        xattrs = kept_xattrs(new_path)
        old_path = f"{old_dir}/{name}"
        if not stat.S_ISDIR(nst.st_mode):
            if ost is None or not _same(new_path, nst, xattrs, old_path, ost):
                out.append(_Change("entry", child, new_path, nst, xattrs))
        elif ost is None or not stat.S_ISDIR(ost.st_mode):
            out.append(_Change("tree", child, new_path, nst, xattrs))
        else:
            mark = len(out)
            out.append(_Change("entry", child, new_path, nst, xattrs))
            changed_below = _diff_dir(child, new_path, old_path, out)
            if not changed_below and _same(new_path, nst, xattrs, old_path, ost):
                out.pop(mark)  # nothing after it: O(1)
    return len(out) > start


def _same(
    new_path: str, nst: os.stat_result, xattrs: dict[str, bytes], old_path: str, ost: os.stat_result
) -> bool:
    """True when the entry needs no record in the diff: same type, metadata and content."""
    mode = nst.st_mode
    if (mode, nst.st_uid, nst.st_gid, nst.st_mtime_ns) != (
        ost.st_mode,
        ost.st_uid,
        ost.st_gid,
        ost.st_mtime_ns,
    ):
        return False
    if not stat.S_ISDIR(mode) and nst.st_size != ost.st_size:
        return False
    if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and nst.st_rdev != ost.st_rdev:
        return False
    if stat.S_ISLNK(mode) and os.readlink(new_path) != os.readlink(old_path):
        return False
    if xattrs != kept_xattrs(old_path):
        return False
    return not stat.S_ISREG(mode) or _same_content(new_path, old_path)


def _same_content(a: str, b: str) -> bool:
    """Byte comparison. Size and mtime alone would miss a same-size rewrite within the same
    second (Docker's naive differ does); the vfs driver is the fallback, correctness first."""
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            chunk = fa.read(_CHUNK)
            if chunk != fb.read(_CHUNK):
                return False
            if not chunk:
                return True


# --------------------------------------------------------------------------- overlay probe


def overlay_supported(probe_dir: str) -> bool:
    """True when an overlay mount with a whiteout and an opaque dir really works on the
    filesystem of ``probe_dir``; False on overlay-on-overlay, filesystems without d_type, and
    for a user whose kernel refuses overlayfs in a user namespace (Linux < 5.11).

    Not root, the mount is tried as rootless containers make it: in a user namespace of the
    user's own, with ``userxattr`` (opaque dirs marked ``user.overlay.opaque``).
    Runs once per store (the driver is recorded at first use); uses unshare(1) and mount(8) so
    this module needs no raw syscalls. Everything it makes is removed.
    """
    if shutil.which("unshare") is None:
        return False
    try:
        os.makedirs(probe_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="overlay-probe-", dir=probe_dir)
    except OSError:
        return False
    try:
        return _probe(tmp, rootless=os.geteuid() != 0)
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        with contextlib.suppress(OSError):
            remove_tree(tmp)  # the rootless probe's work/work is mode 000


def _probe(tmp: str, rootless: bool) -> bool:
    for name in ("lower1", "lower1/dir", "lower2", "lower2/dir", "upper", "work", "merged"):
        os.mkdir(os.path.join(tmp, name))
    for name in ("lower1/kept", "lower1/gone", "lower1/dir/old", "lower2/dir/new"):
        with open(os.path.join(tmp, name), "wb"):
            pass
    os.mknod(os.path.join(tmp, "lower2/gone"), stat.S_IFCHR, 0)
    os.setxattr(os.path.join(tmp, "lower2/dir"), USER_OPAQUE_XATTR if rootless else OPAQUE_XATTR,
                b"y")  # fmt: skip
    # The mount lives only in a throwaway mount namespace (unshare --mount): if this process
    # is killed mid-probe, the kernel drops it with the namespace and no mount leaks onto the
    # host. Relative paths (run in tmp): no escaping of ',' or ':' in probe_dir needed.
    # ``volatile`` (Linux 5.10+; the plain mount where it is refused): unmounting an overlay
    # otherwise syncs the whole filesystem under it, 0.1-1 s after a download left dirty pages
    # (a first pull into a new store probes while its layers are being written).
    mount = "mount -t overlay overlay -o lowerdir=lower2:lower1,upperdir=upper,workdir=work" + (
        ",userxattr" if rootless else ""
    )
    script = (
        f"{{ {mount},volatile merged 2>/dev/null || {mount} merged; }}"
        " && test -e merged/kept && ! test -e merged/gone && ! test -L merged/gone"
        ' && test "$(ls -A merged/dir)" = new'
    )
    user = ["--user", "--map-root-user"] if rootless else []
    probe = ["unshare", *user, "--mount", "--propagation", "private", "sh", "-c", script]
    return subprocess.run(probe, cwd=tmp, capture_output=True, timeout=30).returncode == 0


def fuse_overlay_problem(probe_dir: str) -> str:
    """Why fuse-overlayfs cannot serve a store whose temp dir is ``probe_dir``, or ``""``.

    A real mount, made as the containers make it (not root: in a user namespace of the
    user's own, which owns the mount), with a ``.wh.`` whiteout and an opaque marker in a
    lower layer; the daemon exits with the throwaway mount namespace."""
    program = shutil.which("fuse-overlayfs")
    if program is None:
        return "fuse-overlayfs is not installed (Debian package fuse-overlayfs)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return ("/dev/fuse is missing or not readable and writable by this user (as root: "
                "chmod 0666 /dev/fuse, as Debian's udev rules leave it)")  # fmt: skip
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    try:
        os.makedirs(probe_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="fuse-probe-", dir=probe_dir)
    except OSError as exc:
        return f"cannot make a probe dir: {exc.strerror}"
    try:
        for name in ("lower1", "lower1/dir", "lower2", "lower2/dir", "upper", "work", "merged"):
            os.mkdir(os.path.join(tmp, name))
        for name in ("lower1/kept", "lower1/gone", "lower1/dir/old", "lower2/dir/new",
                     "lower2/.wh.gone", "lower2/dir/.wh..wh..opq"):  # fmt: skip
            with open(os.path.join(tmp, name), "wb"):
                pass
        # the daemon keeps the namespace alive: it ends when the mount goes, whatever the tests
        script = (
            f"{program} -o lowerdir=lower2:lower1,upperdir=upper,workdir=work merged"
            " && { test -e merged/kept && ! test -e merged/gone"
            ' && test "$(ls -A merged/dir)" = new && echo x > merged/new && rm merged/kept'
            " && ! test -e merged/kept; r=$?; umount merged; exit $r; }"
        )
        user = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
        probe = ["unshare", *user, "--mount", "--propagation", "private", "sh", "-c", script]
        proc = subprocess.run(probe, cwd=tmp, capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            return ""
        why = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return f"fuse-overlayfs cannot mount here ({why[0]})"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"fuse-overlayfs cannot mount here ({exc})"
    finally:
        with contextlib.suppress(OSError):
            remove_tree(tmp)


def tidy_fuse_upper(upper: str, lower: list[str]) -> None:
    """Drop the opaque marks fuse-overlayfs gives every directory it creates where no lower
    layer has that directory (nothing to hide there): the layer then holds what the kernel's
    overlay would have written, and a build gives the same layer in either driver."""
    from ipydock.engine.store import userns

    if userns.delegates():  # dirs of the range's owners (apt's partial/)
        userns.call("ipydock.engine.store.snapshots:tidy_fuse_upper", upper, lower)
        return
    from ipydock.engine.store.layerfmt import FUSE_OPAQUE_DEVICE, OPAQUE_MARKER
    from ipydock.engine.store.layerview import LayerView

    view = LayerView(lower)
    stack: list[tuple[str, bool]] = [("", False)]  # (rel, known to be new)
    while stack:
        rel, new = stack.pop()
        path = os.path.join(upper, rel) if rel else upper
        if rel and not new:
            below = view.lstat(rel)
            new = below is None or not stat.S_ISDIR(below.st_mode)
        if new:
            for name in (OPAQUE_MARKER, FUSE_OPAQUE_DEVICE):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(path, name))
            with contextlib.suppress(OSError):
                os.removexattr(path, "user.fuseoverlayfs.opaque", follow_symlinks=False)
        with os.scandir(path) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append((f"{rel}/{e.name}" if rel else e.name, new))
