"""Linux capabilities by name, Docker's default set, and ``--cap-add/--cap-drop`` arithmetic.

Pure: nothing here asks the kernel. :func:`resolve` mirrors moby's ``TweakCapabilities`` (Docker
20.10): ``--privileged`` gives every capability; ``--cap-add ALL`` gives all but the dropped ones;
``--cap-drop ALL`` keeps only the added ones; otherwise the default set minus drops plus adds.
Names are accepted with or without ``CAP_`` and in any case, as the docker CLI does.
"""

from __future__ import annotations

from collections.abc import Iterable

from ipydock.errors import UnknownCapability

__all__ = ["CAPABILITIES", "DOCKER_DEFAULT_CAPS", "mask", "normalize", "resolve"]

#: Capability numbers from ``linux/capability.h``, in order (index == number).
CAPABILITIES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip

#: moby ``oci/caps/defaults.go``: CapEff of a root process in ``docker run`` is 0xa80425fb.
DOCKER_DEFAULT_CAPS: frozenset[str] = frozenset(
    {
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
    }
)  # fmt: skip

_ALL = "ALL"


def normalize(name: str) -> str:
    """``cap_net_admin`` / ``NET_ADMIN`` -> ``NET_ADMIN``; ``all`` -> ``ALL``; else raise."""
    upper = name.strip().upper().removeprefix("CAP_")
    if upper != _ALL and upper not in CAPABILITIES:
        raise UnknownCapability(name)
    return upper


def resolve(
    add: Iterable[str] = (), drop: Iterable[str] = (), privileged: bool = False
) -> frozenset[str]:
    """The capability names a container gets, as ``docker run`` would compute them."""
    if privileged:
        return frozenset(CAPABILITIES)
    adds = {normalize(n) for n in add}
    drops = {normalize(n) for n in drop}
    if _ALL in adds:
        return frozenset(CAPABILITIES) - drops
    if _ALL in drops:
        return frozenset(adds)
    return (DOCKER_DEFAULT_CAPS - drops) | adds


def mask(names: Iterable[str]) -> int:
    """The kernel bit mask (as in ``/proc/PID/status`` CapEff) of capability names."""
    bits = 0
    for name in names:
        bits |= 1 << CAPABILITIES.index(normalize(name))
    return bits
