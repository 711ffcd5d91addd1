"""Device rules on cgroup v2: a tiny eBPF program attached to the container's cgroup.

cgroup v2 has no ``devices`` controller; the kernel asks a ``BPF_PROG_TYPE_CGROUP_DEVICE``
program instead, once per ``open``/``mknod`` of a device node, with the access type, major and
minor. :func:`program` turns a list of :class:`~ipydock.engine.runtime.spec.DeviceRule` into
that program (pure, unit-testable), :func:`attach` loads it with ``bpf(2)`` and attaches it to
a cgroup directory; it stays attached until the directory is removed.

::

    r2 = ctx->access_type >> 16     access: 1 mknod, 2 read, 4 write
    r3 = ctx->access_type & 0xffff  type: 1 block, 2 char
    r4 = ctx->major, r5 = ctx->minor
    for rule in reversed(rules):    the last matching rule wins, as in the v1 controller
        if type, major, minor match and the access asked is within the rule's:
            return rule.allow
    return 0                         nothing matched: denied

libbpf would be the usual tool, but there is no maintained Python binding that loads a program
without a compiler; the program is a dozen instructions per rule, so it is assembled here.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from ipydock.engine.runtime.spec import DeviceRule

__all__ = ["attach", "program"]

_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_LICENSE = b"Apache-2.0\0"

# <linux/bpf_common.h> opcodes, as used below
_LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
_MOV64_X = 0xBF  # dst = src
_MOV64_K = 0xB7  # dst = imm
_AND64_K = 0x57  # dst &= imm
_RSH64_K = 0x77  # dst >>= imm
_JNE_K = 0x55  # if dst != imm: pc += off
_EXIT = 0x95

_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}


def _insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def _rule_block(rule: DeviceRule) -> list[bytes]:
    """Instructions that return ``rule.allow`` if the rule matches, else fall through."""
    checks: list[tuple[int, int]] = []  # (register, value) pairs that must be equal
    if rule.type != "a":
        checks.append((3, _TYPES[rule.type]))
    if rule.type != "a" and rule.major >= 0:
        checks.append((4, rule.major))
    if rule.type != "a" and rule.minor >= 0:
        checks.append((5, rule.minor))
    mask = sum(_ACCESS[c] for c in set(rule.access))
    tail = [_insn(_MOV64_K, 0, imm=int(rule.allow)), _insn(_EXIT)]
    access = [] if mask == 7 else [_insn(_MOV64_X, 1, 2), _insn(_AND64_K, 1, imm=~mask & 7)]
    # Each jump skips to the end of the block; count what follows it.
    after = len(access) + (1 if access else 0) + len(tail)
    block: list[bytes] = []
    for i, (reg, value) in enumerate(checks):
        block.append(_insn(_JNE_K, reg, off=(len(checks) - i - 1) + after, imm=value))
    block += access
    if access:
        block.append(_insn(_JNE_K, 1, off=len(tail), imm=0))
    return block + tail


def program(rules: tuple[DeviceRule, ...] | list[DeviceRule]) -> bytes:
    """The eBPF instructions (8 bytes each) enforcing ``rules``."""
    code = [
        _insn(_LDX_MEM_W, 2, 1, 0),  # access_type
        _insn(_MOV64_X, 3, 2),
        _insn(_AND64_K, 3, imm=0xFFFF),  # device type
        _insn(_RSH64_K, 2, imm=16),  # access bits
        _insn(_LDX_MEM_W, 4, 1, 4),  # major
        _insn(_LDX_MEM_W, 5, 1, 8),  # minor
    ]
    for rule in reversed(rules):
        code += _rule_block(rule)
        if rule.type == "a" and set(rule.access) == set("rwm"):
            return b"".join(code)  # matches everything: the rest is unreachable
    code += [_insn(_MOV64_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(code)


def attach(cgroup_dir: str, rules: tuple[DeviceRule, ...]) -> None:
    """Load the program for ``rules`` and attach it to ``cgroup_dir``; raises OSError."""
    if _SYS_BPF is None:
        raise OSError(0, f"bpf(2) number unknown on {os.uname().machine}")
    code = program(rules)
    try:
        prog_fd = _load(code, log_size=0)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        prog_fd = _load(code, log_size=1 << 16)  # again, to say why the verifier refused
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _bpf(_BPF_PROG_ATTACH, struct.pack("<IIII", dir_fd, prog_fd, _BPF_CGROUP_DEVICE, 0))
        finally:
            os.close(dir_fd)
    finally:
        os.close(prog_fd)


def _load(code: bytes, log_size: int) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    license = ctypes.create_string_buffer(_LICENSE, len(_LICENSE))
    log = ctypes.create_string_buffer(max(log_size, 1))
    attr = struct.pack(
        "<IIQQIIQII",
        _BPF_PROG_TYPE_CGROUP_DEVICE,
        len(code) // 8,
        ctypes.addressof(insns),
        ctypes.addressof(license),
        1 if log_size else 0,  # log_level
        log_size,
        ctypes.addressof(log) if log_size else 0,
        0,
        0,
    )
    return _bpf(_BPF_PROG_LOAD, attr, log if log_size else None)


_libc = ctypes.CDLL(None, use_errno=True)


def _bpf(cmd: int, attr: bytes, log: ctypes.Array[ctypes.c_char] | None = None) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = _libc.syscall(ctypes.c_long(_SYS_BPF or 0), ctypes.c_int(cmd), buf, len(attr))
    if ret < 0:
        err = ctypes.get_errno()
        detail = log.value.decode(errors="replace").strip() if log is not None else ""
        raise OSError(err, f"bpf: {os.strerror(err)}" + (f": {detail}" if detail else ""))
    return int(ret)
