"""Named volumes: directories that live apart from containers, shared by several, outliving them.

::

    ROOT/volumes/<name>/volume.json   {name, driver, created, labels, anonymous}  (written last)
                       /_data/         what containers see at their mount point

    volume create ---> tmp/volume-* --rename--> volumes/<name>    (the rename is the commit)
    container create -v name:/p ---> ensure(name) ---> seeded from the image at /p if new
    volume rm ---> refused while a container (running or not) uses it, unless -f on a stopped one

Anonymous volumes (an image's ``VOLUME`` entries) get a random 64-hex name and go with
``rm -v`` of their container. Which container uses a volume is the containers' knowledge: the
caller passes it in (``users``), so this module knows nothing of containers.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import stat
from collections.abc import Callable
from datetime import datetime, timezone

from ipydock.commands.runflags import valid_volume_name
from ipydock.engine.store.fsutil import atomic_write_json, owned_name, remove_tree
from ipydock.errors import UsageError, VolumeInUse, VolumeNotFound
from ipydock.models import FileEntry, VolumeInfo

__all__ = ["Volumes", "valid_name"]

Users = Callable[[str], list[tuple[str, bool]]]


def valid_name(name: str) -> bool:
    return valid_volume_name(name)


class Volumes:
    def __init__(self, root: str, tmp_dir: str) -> None:
        self.dir = os.path.join(root, "volumes")
        self.tmp_dir = tmp_dir
        os.makedirs(self.dir, exist_ok=True)

    def data_path(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    def get(self, name: str) -> VolumeInfo:
        try:
            with open(os.path.join(self.dir, name, "volume.json"), "rb") as f:
                data = json.load(f)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise VolumeNotFound(name) from exc
        return VolumeInfo(
            name=data["name"],
            driver=data.get("driver", "local"),
            mountpoint=self.data_path(name),
            created=datetime.fromisoformat(data["created"]),
            labels=data.get("labels", {}),
            anonymous=data.get("anonymous", False),
        )

    def list(self) -> list[VolumeInfo]:
        out = []
        for name in sorted(os.listdir(self.dir)):
            try:
                out.append(self.get(name))
            except VolumeNotFound:
                continue
        return out

    def create(
        self, name: str | None = None, *, labels: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> VolumeInfo:  # fmt: skip
        """Make a volume (an existing one of that name is returned as it is, as docker does)."""
        name = name or secrets.token_hex(32)
        if not valid_name(name):
            raise UsageError(
                f'create {name}: "{name}" includes invalid characters for a local volume name, '
                "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        try:
            return self.get(name)
        except VolumeNotFound:
            pass
        tmp = os.path.join(self.tmp_dir, owned_name("volume-"))
        os.makedirs(os.path.join(tmp, "_data"), mode=0o755)
        record = {
            "name": name,
            "driver": "local",
            "created": datetime.now(timezone.utc).isoformat(),
            "labels": labels or {},
            "anonymous": anonymous,
        }
        atomic_write_json(os.path.join(tmp, "volume.json"), record, self.tmp_dir)
        try:
            os.rename(tmp, os.path.join(self.dir, name))
        except OSError:  # made by someone else meanwhile
            remove_tree(tmp)
        return self.get(name)

    def is_empty(self, name: str) -> bool:
        return not os.listdir(self.data_path(name))

    def remove(self, name: str, users: Users, *, force: bool = False) -> None:
        """Delete a volume; refused while containers use it (``force``: only stopped ones)."""
        self.get(name)
        using = users(name)
        if using and (not force or any(running for _, running in using)):
            raise VolumeInUse(name, [cid for cid, _ in using])
        doomed = os.path.join(self.tmp_dir, owned_name("gone-volume-"))
        os.rename(os.path.join(self.dir, name), doomed)
        remove_tree(doomed)

    def prune(self, users: Users, *, all: bool = False) -> tuple[builtins.list[str], int]:
        """Remove unused anonymous volumes (``all``: unused named ones too); (names, bytes)."""
        gone: builtins.list[str] = []
        freed = 0
        for vol in self.list():
            if (vol.anonymous or all) and not users(vol.name):
                freed += _tree_size(vol.mountpoint)
                self.remove(vol.name, users)
                gone.append(vol.name)
        return gone, freed

    def files(self, name: str, path: str = "/") -> builtins.list[FileEntry]:
        """Everything below ``path`` in the volume (pre-order), paths relative to its root."""
        base = self.data_path(name)
        self.get(name)
        start = os.path.normpath(os.path.join(base, path.lstrip("/")))
        if start != base and not start.startswith(base + "/"):
            raise UsageError(f"path {path!r} leaves the volume")
        if not os.path.lexists(start):
            raise UsageError(f"no such path in volume {name}: {path}")
        out = [_entry(base, start)]
        if os.path.isdir(start) and not os.path.islink(start):
            for dirpath, dirs, names in os.walk(start):
                dirs.sort()
                for n in sorted(dirs + names):
                    out.append(_entry(base, os.path.join(dirpath, n)))
        return out


_TYPES = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink",
          stat.S_IFIFO: "fifo", stat.S_IFCHR: "char", stat.S_IFBLK: "block",
          stat.S_IFSOCK: "socket"}  # fmt: skip


def _entry(base: str, path: str) -> FileEntry:
    st = os.lstat(path)
    rel = "/" + os.path.relpath(path, base) if path != base else "/"
    return FileEntry(
        path=rel,
        type=_TYPES.get(stat.S_IFMT(st.st_mode), "other"),
        size=st.st_size if stat.S_ISREG(st.st_mode) else 0,
        mode=stat.filemode(st.st_mode),
        mtime=datetime.fromtimestamp(st.st_mtime, timezone.utc),
        link_target=os.readlink(path) if stat.S_ISLNK(st.st_mode) else "",
    )


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total
