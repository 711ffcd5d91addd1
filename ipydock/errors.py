"""The exceptions ipydock raises, one tree for every layer.

Callers branch on the class or its attributes, never on the message text. Foreign errors
(``OSError`` from syscalls, ``tarfile`` errors, HTTP or Docker API errors) are converted once, at
the boundary where they enter, and chained with ``raise ... from``.

::

    IPyDockError                      every error ipydock raises on purpose
     +-- UsageError                   bad flags or arguments on the CLI / in a magic
     |    +-- NotATerminal               -t, but stdin is not a terminal (docker's words)
     +-- InvalidReference(text)       not a valid image name, tag or digest
     +-- NotFound                     something named does not exist
     |    +-- ImageNotFound(ref)
     |    +-- BlobNotFound(digest)
     |    +-- LayerNotFound(diff_id)
     |    +-- ContainerNotFound(ref)
     |    +-- VolumeNotFound(name)
     |    +-- NetworkNotFound(name)
     |    +-- ServiceNotFound(name)        a swarm service
     |    +-- ExecNotFound(exec_id)       an exec instance of the API service
     +-- Conflict                     the request clashes with the state of the store
     |    +-- ImageInUse(image_id, container_ids, running)
     |    +-- ImageHasChildren(image_id, children)
     |    +-- ImageMultiplyReferenced(image_id, tags)
     |    +-- NameInUse(name, container_id)
     |    +-- InvalidStateTransition(container_id, from_, to)
     |    +-- ContainerRunning(container_id)     rm without -f, commit/cp of a gone layer, ...
     |    +-- ContainerNotRunning(container_id)  exec/top/pause on a stopped container
     |    +-- VolumeInUse(name, container_ids)
     |    +-- NetworkInUse(name, container_ids)    rm of a network with endpoints
     |    +-- NetworkExists(name)                  create with a name in use
     |    +-- AddressUnavailable(network, why)     overlapping subnet, --ip taken, pool empty
     |    +-- ProcessNotPaused(pid)   start() on a process that is not waiting to start
     +-- StoreError                   the store itself
     |    +-- DigestMismatch(expected, actual)
     |    +-- StoreLocked(path)
     |    +-- NoSpace(path)
     |    +-- StoreCorrupt(problems)
     +-- InvalidSpec(field, why)      a container Spec that cannot be run, found before any fork
     |    +-- UnknownCapability(name)
     |    +-- InvalidSeccompProfile(source, why)   a --security-opt seccomp=FILE profile
     +-- RuntimeFailure               the container runtime could not do what was asked
     |    +-- StartFailed(step, errno, detail, exit_code)   the container died during setup
     |    |    +-- CommandNotFound(command)       Docker's "executable file not found", 127
     |    |    +-- CommandNotExecutable(command, errno)   126
     |    +-- HelperDied(returncode)  the fork-server helper went away
     |    +-- CgroupError(path, why)  a cgroup could not be made, written or removed
     +-- PartialFailure(done, failed)   a many-names command (stop a b) failed for some names
     +-- InvalidMountSpec(spec, why)  a -v/--mount value that cannot be used
     +-- InvalidNetworkConfig(field, why)   a bad --subnet/--gateway/--ip/-p/--driver value
     +-- NetlinkFailure(operation, errno)   the kernel refused a network change
     +-- NotSupported(operation, engine, hint)   this engine cannot do that (yet)
     +-- EngineUnavailable(host, why)  the Docker engine does not answer
     +-- SwarmUnavailable(host, why)   a swarm command on an engine that is no swarm manager
     +-- ServiceStuck(host, service, task, node, why, hint)   its tasks cannot run (no node
     |                                can pull the image; the node it needs is down)
     +-- EngineError(status, message)  the Docker engine refused, for a reason not above
     +-- RegistryError(registry, why)  a registry refused or failed (pull, push, login)
     |    +-- RegistryUnreachable(registry, why)    no connection, TLS failure, timeout
     |    +-- RegistryAuthFailed(registry, why)     bad credentials or access denied
     |    +-- ManifestUnknown(registry, ref)        no such repository, tag or digest there
     +-- BootstrapFailed(suite, why, kind)   mmdebstrap could not make the root (image bootstrap)
     +-- ArchiveError(source)         a tarball that cannot be read
     |    +-- UnsafeArchiveEntry(entry, reason)   an entry that would escape its target
     +-- BuildError(line, instruction)   a build stopped (line 0: no Dockerfile line at fault)
          +-- DockerfileError(line, instruction, why)   syntax, unknown instruction, bad flag
          +-- BuildContextError(source, why)            a context that cannot be read
          +-- CopySourceError(line, instruction, path, why)   missing or outside the context
          +-- BuildStepFailed(line, instruction, exit_code, last_lines)   RUN exited non-zero

Every class has a one-line ``str()`` meant for a user: what failed and, where there is one, what to
do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AddressUnavailable",
    "ArchiveError",
    "BlobNotFound",
    "BootstrapFailed",
    "BuildContextError",
    "BuildError",
    "BuildStepFailed",
    "CgroupError",
    "CommandNotExecutable",
    "CommandNotFound",
    "Conflict",
    "ContainerNotFound",
    "ContainerNotRunning",
    "ContainerRunning",
    "CopySourceError",
    "DigestMismatch",
    "DockerfileError",
    "EngineError",
    "EngineUnavailable",
    "ExecNotFound",
    "HelperDied",
    "IPyDockError",
    "ImageHasChildren",
    "ImageInUse",
    "ImageMultiplyReferenced",
    "ImageNotFound",
    "InvalidMountSpec",
    "InvalidNetworkConfig",
    "InvalidReference",
    "InvalidSeccompProfile",
    "InvalidSpec",
    "InvalidStateTransition",
    "LayerNotFound",
    "ManifestUnknown",
    "NameInUse",
    "NetlinkFailure",
    "NetworkExists",
    "NetworkInUse",
    "NetworkNotFound",
    "NoSpace",
    "NotATerminal",
    "NotFound",
    "NotSupported",
    "PartialFailure",
    "ProcessNotPaused",
    "RegistryAuthFailed",
    "RegistryError",
    "RegistryUnreachable",
    "RuntimeFailure",
    "ServiceNotFound",
    "ServiceStuck",
    "StartFailed",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "SwarmUnavailable",
    "UnknownCapability",
    "UnsafeArchiveEntry",
    "UsageError",
    "VolumeInUse",
    "VolumeNotFound",
]


class IPyDockError(Exception):
    """Base of every error ipydock raises on purpose."""


class UsageError(IPyDockError):
    """Bad flags or arguments; the message says which and how to write them."""


class NotATerminal(UsageError):
    """``-it`` with stdin from a pipe or a file: docker's own line, which the CLI prints as
    it is."""

    def __init__(self) -> None:
        super().__init__("the input device is not a TTY")


class InvalidReference(IPyDockError):
    def __init__(self, text: str, why: str = "") -> None:
        self.text = text
        self.why = why
        detail = f": {why}" if why else ""
        super().__init__(
            f"invalid reference format {text!r}{detail} "
            "(use NAME[:TAG] or NAME@sha256:DIGEST, lowercase, e.g. busybox:latest)"
        )


class NotFound(IPyDockError):
    """Something named does not exist."""


class ImageNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"No such image: {ref} (see `ipydock image ls -a`)")


class BlobNotFound(NotFound):
    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__(f"blob {digest} is missing from the store (run `ipydock system check`)")


class LayerNotFound(NotFound):
    def __init__(self, diff_id: str) -> None:
        self.diff_id = diff_id
        super().__init__(f"layer {diff_id} is missing from the store (run `ipydock system check`)")


class ContainerNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"No such container: {ref} (see `ipydock ps -a`)")


class VolumeNotFound(NotFound):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"No such volume: {name} (see `ipydock volume ls`)")


class NetworkNotFound(NotFound):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"No such network: {name} (see `ipydock network ls`)")


class ServiceNotFound(NotFound):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"No such service: {name} (see `ipydock service ls`)")


class ExecNotFound(NotFound):
    """An exec instance the API service does not know (made by another run of it, or never)."""

    def __init__(self, exec_id: str) -> None:
        self.exec_id = exec_id
        super().__init__(f"No such exec instance: {exec_id}")


class Conflict(IPyDockError):
    """The request clashes with the current state (image in use, has children, ...)."""


class ImageInUse(Conflict):
    def __init__(self, image_id: str, container_ids: Sequence[str], running: bool) -> None:
        self.image_id = image_id
        self.container_ids = list(container_ids)
        self.running = running
        short = image_id.removeprefix("sha256:")[:12]
        cid = self.container_ids[0][:12] if self.container_ids else "?"
        if running:
            msg = (
                f"conflict: unable to delete {short} (cannot be forced) - image is being used "
                f"by running container {cid} (stop and remove it first)"
            )
        else:
            msg = (
                f"conflict: unable to delete {short} (must be forced) - image is being used "
                f"by stopped container {cid} (remove it, or use -f)"
            )
        super().__init__(msg)


class ImageHasChildren(Conflict):
    def __init__(self, image_id: str, children: Sequence[str]) -> None:
        self.image_id = image_id
        self.children = list(children)
        short = image_id.removeprefix("sha256:")[:12]
        kids = ", ".join(c.removeprefix("sha256:")[:12] for c in self.children)
        super().__init__(
            f"conflict: unable to delete {short} (cannot be forced) - image has dependent "
            f"child images: {kids} (remove those first)"
        )


class ImageMultiplyReferenced(Conflict):
    def __init__(self, image_id: str, tags: Sequence[str]) -> None:
        self.image_id = image_id
        self.tags = list(tags)
        short = image_id.removeprefix("sha256:")[:12]
        super().__init__(
            f"conflict: unable to delete {short} (must be forced) - image is referenced in "
            f"multiple repositories: {', '.join(self.tags)} (remove by name, or use -f)"
        )


class NameInUse(Conflict):
    def __init__(self, name: str, container_id: str) -> None:
        self.name = name
        self.container_id = container_id
        super().__init__(
            f'Conflict. The container name "/{name}" is already in use by container '
            f'"{container_id}". You have to remove (or rename) that container to be able to '
            "reuse that name."
        )


class InvalidStateTransition(Conflict):
    """A lifecycle move the state machine does not allow (e.g. ``dead`` -> ``running``)."""

    def __init__(self, container_id: str, from_: str, to: str) -> None:
        self.container_id = container_id
        self.from_ = from_
        self.to = to
        super().__init__(
            f"container {container_id[:12]} cannot go from {from_} to {to} "
            "(see `ipydock inspect` for its state)"
        )


class ContainerRunning(Conflict):
    def __init__(self, container_id: str, action: str = "remove") -> None:
        self.container_id = container_id
        self.action = action
        super().__init__(
            f"You cannot {action} a running container {container_id}. Stop the container "
            f"before attempting {action} or force {action}"
        )


class ContainerNotRunning(Conflict):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f"Container {container_id} is not running (start it first)")


class VolumeInUse(Conflict):
    def __init__(self, name: str, container_ids: Sequence[str]) -> None:
        self.name = name
        self.container_ids = list(container_ids)
        ids = ", ".join(self.container_ids)
        super().__init__(
            f"remove {name}: volume is in use - [{ids}] (remove those containers first, or use -f)"
        )


class NetworkInUse(Conflict):
    def __init__(self, name: str, container_ids: Sequence[str]) -> None:
        self.name = name
        self.container_ids = list(container_ids)
        super().__init__(
            f"error while removing network: network {name} has active endpoints "
            f"({', '.join(c[:12] for c in self.container_ids)}; disconnect or remove them first)"
        )


class NetworkExists(Conflict):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"network with name {name} already exists (choose another name)")


class AddressUnavailable(Conflict):
    def __init__(self, network: str, why: str) -> None:
        self.network = network
        self.why = why
        super().__init__(f"network {network}: {why}")


class InvalidNetworkConfig(IPyDockError):
    def __init__(self, field: str, why: str) -> None:
        self.field = field
        self.why = why
        super().__init__(f"invalid {field}: {why}")


class NetlinkFailure(IPyDockError):
    """The kernel refused a network change (pyroute2's ``NetlinkError``, with its errno)."""

    def __init__(self, operation: str, errno: int, detail: str = "") -> None:
        self.operation = operation
        self.errno = errno
        super().__init__(f"{operation}: {detail or f'netlink error {errno}'}")


class InvalidMountSpec(IPyDockError):
    def __init__(self, spec: str, why: str) -> None:
        self.spec = spec
        self.why = why
        super().__init__(f"invalid mount config {spec!r}: {why}")


class NotSupported(IPyDockError):
    """The current engine cannot do ``operation``; ``hint`` says what to use instead."""

    def __init__(self, operation: str, engine: str, hint: str) -> None:
        self.operation = operation
        self.engine = engine
        self.hint = hint
        super().__init__(f"{operation}: not possible with the {engine} engine; {hint}")


class EngineUnavailable(IPyDockError):
    """The Docker engine at ``host`` cannot be reached (not running, wrong URL, no access)."""

    def __init__(self, host: str, why: str, hint: str = "") -> None:
        self.host = host
        self.why = " ".join(why.split())  # one line
        hint = hint or ("start dockerd, or point DOCKER_HOST / `%ipydock engine docker --host "
                        "URL` at a running one")  # fmt: skip
        super().__init__(f"cannot reach the Docker engine at {host}: {self.why} ({hint})")


class SwarmUnavailable(IPyDockError):
    """A swarm command (service, node, stack) on an engine that is not a swarm manager, or on
    the bundled engine, which has no swarm."""

    def __init__(self, host: str, why: str) -> None:
        self.host = host
        self.why = why
        super().__init__(
            f"no swarm at {host}: {why} (run `ipydock swarm init` on a Docker engine, or switch "
            "to a swarm manager with `%ipydock engine docker --host URL`)"
        )


class ServiceStuck(IPyDockError):
    """A swarm service whose tasks cannot run as things stand: a node cannot pull its image, or
    no node may take a task (the one its constraint names is down). The swarm keeps trying;
    ``hint`` says what would let it succeed."""

    def __init__(self, host: str, service: str, task: str, node: str, why: str,
                 hint: str) -> None:  # fmt: skip
        self.host, self.service, self.task, self.node = host, service, task, node
        self.why = " ".join(why.split())
        self.hint = hint
        where = f"{task} on {node}" if node else task
        super().__init__(
            f"service {service} cannot run on the swarm at {host}: {where}: {self.why} "
            f"({hint}; the swarm keeps trying until `service rm {service}`)"
        )


class EngineError(IPyDockError):
    """The Docker engine answered with an error that no other class names."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"Docker engine error ({status}): {message}")


class StoreError(IPyDockError):
    """The on-disk store could not do what was asked."""


class DigestMismatch(StoreError):
    def __init__(self, expected: str, actual: str, what: str = "blob") -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{what} digest mismatch: expected {expected}, got {actual} "
            "(the data is corrupt or truncated; fetch or save it again)"
        )


class StoreLocked(StoreError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"the store at {path} is busy; try again when the other command ends")


class NoSpace(StoreError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"no space left on the device holding {path}; nothing was changed "
            "(free some space, e.g. `ipydock image prune`, and try again)"
        )


class StoreCorrupt(StoreError):
    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "unknown problem"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(
            f"the store is inconsistent: {first}{more}; run `ipydock system check --repair`"
        )


class RegistryError(IPyDockError):
    """A registry answered with an error, or sent something that cannot be used."""

    def __init__(self, registry: str, why: str, status: int = 0) -> None:
        self.registry = registry
        self.why = why
        self.status = status
        super().__init__(f"registry {registry}: {why}")


class RegistryUnreachable(RegistryError):
    def __init__(self, registry: str, why: str) -> None:
        super().__init__(registry, why)
        self.args = (
            f"cannot reach the registry {registry}: {why} (is it running, and is the name "
            "right? plain http is used only for localhost registries)",
        )


class RegistryAuthFailed(RegistryError):
    def __init__(self, registry: str, why: str, status: int = 401) -> None:
        super().__init__(registry, why, status)
        self.args = (f"registry {registry}: {why} (check `ipydock login {registry}`)",)


class ManifestUnknown(RegistryError):
    def __init__(self, registry: str, ref: str) -> None:
        super().__init__(registry, f"manifest for {ref} not found", 404)
        self.ref = ref
        self.args = (
            f"manifest for {ref} not found: repository does not exist, no such tag or digest, "
            "or it needs `ipydock login`",
        )


class BootstrapFailed(IPyDockError):
    """``image bootstrap`` failed; ``kind``: "suite" (no such suite at the mirror), "mirror"
    (no answer), "package" (an --include not found), "setup" (a tool or id range missing),
    "other"."""

    def __init__(self, suite: str, why: str, kind: str = "other") -> None:
        self.suite = suite
        self.why = why
        self.kind = kind
        super().__init__(f"image bootstrap {suite}: {why}" if suite else f"image bootstrap: {why}")


class ArchiveError(IPyDockError):
    def __init__(self, source: str, why: str) -> None:
        self.source = source
        self.why = why
        super().__init__(f"cannot read {source}: {why}")


class UnsafeArchiveEntry(ArchiveError):
    def __init__(self, source: str, entry: str, reason: str) -> None:
        self.entry = entry
        self.reason = reason
        super().__init__(source, f"entry {entry!r} {reason}; refusing to extract it")


class BuildError(IPyDockError):
    """A build stopped at Dockerfile ``line`` (1-based; 0 when no line is at fault) running
    ``instruction`` (its text as written). Nothing was tagged; intermediate images of the steps
    that succeeded stay as the cache, as with ``docker build``."""

    def __init__(self, line: int, instruction: str, message: str) -> None:
        self.line = line
        self.instruction = instruction
        where = f"Dockerfile line {line}: " if line else ""
        super().__init__(f"{where}{message}")


class DockerfileError(BuildError):
    """The Dockerfile itself is wrong: syntax, unknown instruction or stage, bad flag or value."""

    def __init__(self, line: int, instruction: str, why: str) -> None:
        self.why = why
        shown = instruction.splitlines()[0] if instruction else ""
        super().__init__(line, instruction, f"{shown}: {why}" if shown else why)


class BuildContextError(BuildError):
    """The build context (directory, tarball, URL or stdin) cannot be read or used."""

    def __init__(self, source: str, why: str) -> None:
        self.source = source
        self.why = why
        super().__init__(0, "", f"build context {source!r}: {why}")


class CopySourceError(BuildError):
    """A COPY/ADD source that is missing, matches nothing, or lies outside the context."""

    def __init__(self, line: int, instruction: str, path: str, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(line, instruction, f"{instruction.splitlines()[0]}: {path}: {why}")


class BuildStepFailed(BuildError):
    """A RUN step exited non-zero; ``last_lines`` are the last lines it printed."""

    def __init__(
        self, line: int, instruction: str, exit_code: int, last_lines: Sequence[str] = ()
    ) -> None:
        self.exit_code = exit_code
        self.last_lines = list(last_lines)
        tail = "".join(f"\n  | {text}" for text in self.last_lines)
        super().__init__(
            line,
            instruction,
            f"The command '{instruction.splitlines()[0]}' returned a non-zero code: "
            f"{exit_code}{tail}",
        )


class InvalidSpec(IPyDockError):
    """A field of a :class:`~ipydock.engine.runtime.spec.Spec` is wrong; nothing was started."""

    def __init__(self, field: str, why: str) -> None:
        self.field = field
        self.why = why
        super().__init__(f"invalid container spec: {field}: {why}")


class UnknownCapability(InvalidSpec):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__("capabilities", f"unknown capability {name!r} (e.g. NET_ADMIN, SYS_TIME)")


class InvalidSeccompProfile(InvalidSpec):
    """A seccomp profile (docker's JSON format) that cannot be used; ``source`` names it."""

    def __init__(self, source: str, why: str) -> None:
        self.source = source
        self.field, self.why = "seccomp", why
        IPyDockError.__init__(self, f"seccomp profile {source}: {why}")


class RuntimeFailure(IPyDockError):
    """The runtime itself failed (helper process, kernel call, cgroup)."""


class StartFailed(RuntimeFailure):
    """The container process died before its command ran; ``step`` names the setup step."""

    def __init__(self, step: str, errno: int, detail: str, exit_code: int = 125) -> None:
        self.step = step
        self.errno = errno
        self.detail = detail
        self.exit_code = exit_code
        super().__init__(self._text())

    def _text(self) -> str:
        return f"container setup failed at {self.step}: {self.detail}"


class CommandNotFound(StartFailed):
    """The command is not in the image; ``str()`` is Docker's message, ``exit_code`` 127."""

    def __init__(self, command: str, detail: str) -> None:
        self.command = command
        super().__init__("exec", 2, detail, exit_code=127)

    def _text(self) -> str:
        return self.detail


class CommandNotExecutable(StartFailed):
    """The command exists but cannot be executed (permission, format); ``exit_code`` 126."""

    def __init__(self, command: str, errno: int, detail: str) -> None:
        self.command = command
        super().__init__("exec", errno, detail, exit_code=126)

    def _text(self) -> str:
        return self.detail


class HelperDied(RuntimeFailure):
    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        super().__init__(
            f"the container helper process exited (status {returncode}); containers it started "
            "were killed with it (start a new Runtime)"
        )


class CgroupError(RuntimeFailure):
    def __init__(self, path: str, why: str) -> None:
        self.path = path
        self.why = why
        super().__init__(f"cgroup {path}: {why}")


class ProcessNotPaused(Conflict):
    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"process {pid} is not waiting to be started (spawn it with paused=True)")


class PartialFailure(IPyDockError):
    """``stop a b c`` and the like did the names it could (``done``) and failed for the
    others: ``failed`` holds (name, reason) pairs, as docker prints one error per name."""

    def __init__(self, done: Sequence[str], failed: Sequence[tuple[str, str]]) -> None:
        self.done = list(done)
        self.failed = list(failed)
        reasons = "; ".join(reason for _name, reason in self.failed)
        super().__init__(f"{len(self.failed)} of {len(self.done) + len(self.failed)} failed: "
                         f"{reasons}")  # fmt: skip


class IPyDockWarning(UserWarning):
    """Something worked, but not all of it (docker's ``WARNING: …`` lines): the CLI prints
    ``WARNING: message`` on stderr, a notebook shows Python's warning."""
