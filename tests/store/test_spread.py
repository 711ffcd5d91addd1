"""``spread_subdirs``: a store's temp dir, where snapshots are made, is marked as the top of
directory trees (ext4's FS_TOPDIR_FL) where the filesystem has the flag, and nothing fails
where it has not."""

from __future__ import annotations

import array
import errno
import fcntl
import os

import pytest

from ipydock.engine.store import fsutil


def _flags(path: str) -> int | None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(fd, fsutil._FS_IOC_GETFLAGS, buf, True)
        return buf[0]
    except OSError as e:
        if e.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    finally:
        os.close(fd)


def test_temp_dir_marks_its_parent(tmp_path):
    flags = _flags(str(tmp_path))
    if flags is None:
        pytest.skip("this filesystem has no inode flags")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with fsutil.temp_dir(str(tmp), "layer-") as made:
        assert os.path.isdir(made)
    after = _flags(str(tmp))
    assert after is not None
    if "ext" not in _fstype(str(tmp)):
        pytest.skip("FS_TOPDIR_FL is ext2/3/4's")
    assert after & fsutil._FS_TOPDIR_FL
    assert after & ~fsutil._FS_TOPDIR_FL == flags & ~fsutil._FS_TOPDIR_FL  # the others kept


def test_no_flags_no_failure(tmp_path):
    shm = "/dev/shm"
    if not os.path.isdir(shm):
        pytest.skip("no /dev/shm")
    fsutil.spread_subdirs(shm)  # tmpfs: no such flag, nothing raised
    fsutil.spread_subdirs(str(tmp_path / "missing"))  # gone: nothing raised


def _fstype(path: str) -> str:
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mount = fields[4]
            under = path == mount or path.startswith(mount.rstrip("/") + "/")
            if under and len(mount) >= len(best):
                best, kind = mount, fields[fields.index("-") + 1]
    return kind
