"""Test helpers shipped with ipydock, so downstream projects get them too.

* :func:`busybox_rootfs` / :func:`busybox_tarball`: a tiny root filesystem from Debian's
  ``busybox-static`` (``FROM scratch`` + ``ADD`` material: the only image source offline).
* :class:`PodmanService`: Podman's Docker-compatible service, the same interface as Dockerd;
* :class:`Dockerd`: a real ``dockerd`` with its own data root and socket, for side-by-side and
  interop tests, stopped and cleaned away afterwards.
* :class:`CommandServer`: the warm server behind the ``ipydock`` command, started in a runtime
  dir of its own (benchmarks and tests time the CLI as users get it).
* :func:`make_docker_archive`: a docker-archive tarball written from plain bytes, for crafting
  good and bad inputs to ``image load``.
* :class:`LocalRegistry`: a real ``docker-registry`` on 127.0.0.1 (plain, htpasswd, token
  auth), for pull/push tests and benchmarks.

Nothing here imports pytest; ``tests/conftest.py`` wraps these in fixtures.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipydock.engine.store import Store

__all__ = [
    "BUSYBOX",
    "CommandServer",
    "Dockerd",
    "LocalRegistry",
    "PodmanService",
    "REGISTRY_BINARY",
    "ServiceProcess",
    "SshServer",
    "add_step",
    "busybox_rootfs",
    "busybox_tarball",
    "free_port",
    "layer_tar",
    "make_docker_archive",
]

BUSYBOX = "/usr/bin/busybox"


def busybox_rootfs(dest: str, busybox: str = BUSYBOX) -> str:
    """Lay out a minimal root filesystem in ``dest``: busybox, its applets, /etc basics."""
    if not os.path.exists(busybox):
        raise FileNotFoundError(f"{busybox} not found: apt-get install busybox-static")
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "var", "home"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for name in applets.stdout.split():
        link = os.path.join(dest, "bin", name)
        if name != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    }
    for rel, text in files.items():
        with open(os.path.join(dest, rel), "w") as f:
            f.write(text)
    return dest


def busybox_tarball(path: str, busybox: str = BUSYBOX) -> str:
    """``busybox_rootfs`` packed as a gzipped tarball at ``path`` (what ``ADD``/import take)."""
    with tempfile.TemporaryDirectory() as tmp:
        busybox_rootfs(tmp, busybox)
        with tarfile.open(path, "w:gz") as tf:
            for name in sorted(os.listdir(tmp)):
                tf.add(os.path.join(tmp, name), arcname=name)
    return path


def layer_tar(files: dict[str, bytes | None]) -> bytes:
    """An uncompressed layer tar from ``{path: data}``; ``None`` makes a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_docker_archive(
    layers: Sequence[bytes],
    *,
    tags: Sequence[str] = (),
    history: Sequence[dict] | None = None,
    config_extra: dict | None = None,
) -> bytes:
    """A docker-archive (``docker save`` layout) holding one image made of ``layers``."""
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": list(history)
        if history is not None
        else [
            {"created": "2026-01-01T00:00:00Z", "created_by": f"step {i}"}
            for i in range(len(layers))
        ],
        **(config_extra or {}),
    }
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    members = {config_name: config_bytes}
    paths = []
    for diff_id, layer in zip(diff_ids, layers, strict=True):
        path = f"{diff_id[7:]}/layer.tar"
        members[path] = layer
        paths.append(path)
    members["manifest.json"] = json.dumps(
        [{"Config": config_name, "RepoTags": list(tags) or None, "Layers": paths}]
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def add_step(
    store: Store,
    parent: str,
    created_by: str,
    files: dict[str, bytes | None] | None = None,
    *,
    tags: Sequence[str] = (),
    layer: bytes | None = None,
) -> str:
    """Commit a child image of ``parent`` as a classic-builder step would: one history row,
    plus a layer made of ``files`` (or the raw tar ``layer``) unless both are None."""
    from ipydock.engine.registry import reference

    with store.lock:
        rec = store.resolve(parent)
        config = store.config(rec)
        layers = store.layer_chain(rec)
        step: dict = {"created": _bump(config.get("created")), "created_by": created_by}
        if files is not None or layer is not None:
            data = layer if layer is not None else layer_tar(files or {})
            diff_id = store.blobs.put(data)
            top = layers[-1].chain_id if layers else ""
            layers.append(
                store.layers.create(top, diff_id, store.blobs.opener(diff_id), "test layer")
            )
            config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            config["rootfs"]["diff_ids"].append(diff_id)
        else:
            step["empty_layer"] = True
        config["history"] = [*(config.get("history") or []), step]
        config["created"] = step["created"]
        full = [reference.parse(t).with_default_tag().full for t in tags]
        image, _ = store.commit_image(json.dumps(config).encode(), layers, parent=rec.id, tags=full)
        return image.id


def _bump(created: str | None) -> str:
    """One second after ``created``, so every step gets its own time and image ID."""
    from datetime import timedelta

    from ipydock.engine.store.index import format_time, parse_time

    when = parse_time(created)
    if when is None:
        from datetime import datetime, timezone

        when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return format_time(when + timedelta(seconds=1))


class Dockerd:
    """A private ``dockerd`` (data root, exec root and socket under one temp dir).

    ``with Dockerd() as d: d.run("images")``. Started with no bridge and no iptables rules, in
    a network namespace of its own (``unshare --net``): the bridges of the networks it creates
    live and die there, and it cannot touch the host's (a ``--bridge=none`` dockerd in the
    host's namespace deletes the host's ``docker0``). Stopped with SIGTERM and its mounts undone
    on exit. ``own_network=False`` starts it in the host's namespace, for who needs that.

    ``netns=NAME`` starts it in the named network namespace ``/run/netns/NAME`` instead (a swarm
    node the test wired), ``hostname`` in a UTS namespace of its own with that name (swarm
    nodes are told apart by hostname), and ``flags`` replaces the bridge/iptables flags: in a
    namespace of its own a dockerd may keep its default bridge and rules (a swarm needs them).
    """

    _FLAGS = ("--iptables=false", "--ip-masq=false", "--bridge=none")

    def __init__(self, base: str | None = None, *, own_network: bool = True,
                 netns: str | None = None, hostname: str | None = None,
                 flags: Sequence[str] | None = None) -> None:  # fmt: skip
        self.own_network = own_network
        self.netns = netns
        self.hostname = hostname
        self.flags = tuple(self._FLAGS if flags is None else flags)
        self.base = base or tempfile.mkdtemp(prefix="ipydock-dockerd-")
        self.socket = os.path.join(self.base, "docker.sock")
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0", **extra}

    def command(self) -> list[str]:
        """The daemon's argv, without the namespace wrapper."""
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        return [dockerd, "--data-root", os.path.join(self.base, "data"), "--exec-root",
                os.path.join(self.base, "exec"), "-H", self.host, "--pidfile",
                os.path.join(self.base, "dockerd.pid"), *self.flags]  # fmt: skip

    def start(self, timeout: float = 60) -> Dockerd:
        log = open(os.path.join(self.base, "dockerd.log"), "wb")  # noqa: SIM115
        wrapper = ["unshare", "--net", "--"] if self.own_network else []
        if self.netns:
            wrapper = ["nsenter", f"--net=/run/netns/{self.netns}", "--"]
        if self.hostname:  # sh sets it inside the new UTS namespace, then becomes dockerd
            wrapper = ["unshare", "--uts", "--", "sh", "-c", f'hostname {self.hostname} && '
                       'exec "$@"', "sh", *wrapper]  # fmt: skip
        self.proc = subprocess.Popen(
            [*wrapper, *self.command()],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.daemon_env(),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:  # wait for the API to answer (the event), not for a fixed time
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_tail()}")
            if os.path.exists(self.socket) and self.run("version", check=False).returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not answer in {timeout}s: {self.log_tail()}")
            time.sleep(0.05)

    def daemon_env(self) -> dict[str, str]:
        return dict(os.environ)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError), open(os.path.join(self.base, "dockerd.log")) as f:
            return f.read()[-2000:]
        return ""

    def run(
        self, *args: str, check: bool = True, input: bytes | None = None, **kw: object
    ) -> subprocess.CompletedProcess[bytes]:
        docker = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
        return subprocess.run(
            [docker, *args],
            env=self.env(),
            capture_output=True,
            check=check,
            input=input,
            timeout=300,
            **kw,
        )  # type: ignore[call-overload]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        for target in _mounts_under(self.base):
            subprocess.run(["umount", "-l", target], check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Dockerd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PodmanService(Dockerd):
    """Podman's Docker-compatible API (``podman system service``) with a store, run dir and
    network config of its own under one temp dir, in a network namespace of its own: the same
    interface as :class:`Dockerd` (``host``, ``run`` through the docker CLI), so a test written
    for dockerd runs on Podman too."""

    def command(self) -> list[str]:
        podman = shutil.which("podman") or "/usr/bin/podman"
        return [podman, "system", "service", "--time", "0", self.host]

    def daemon_env(self) -> dict[str, str]:
        b = self.base
        storage, conf = os.path.join(b, "storage.conf"), os.path.join(b, "containers.conf")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{b}/graph"\n'
                    f'runroot = "{b}/run"\n')  # fmt: skip
        with open(conf, "w") as f:  # runc: crun refuses this machine's hybrid cgroups;
            # no default ulimits: podman's ask for more than this machine's hard limits
            f.write('[containers]\ndefault_ulimits = []\n'
                    f'[engine]\nruntime = "runc"\ntmp_dir = "{b}/tmp"\n'
                    f'volume_path = "{b}/volumes"\n'
                    'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'events_logfile_path = "{b}/events.log"\n'
                    f'[network]\nnetwork_config_dir = "{b}/networks"\n')  # fmt: skip
        # Podman's API writes each loaded archive to $TMPDIR (else /var/tmp) and keeps it
        scratch = os.path.join(b, "scratch")
        os.makedirs(scratch, exist_ok=True)
        return {**os.environ, "CONTAINERS_STORAGE_CONF": storage, "CONTAINERS_CONF": conf,
                "TMPDIR": scratch}  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:  # containers first: their
            ids = self.run("ps", "-aq", check=False).stdout.split()  # conmons outlive the API
            if ids:
                self.run("rm", "-f", *[i.decode() for i in ids], check=False)
        for pid in _pids_mentioning(self.base):
            if self.proc is None or pid != self.proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        super().stop()


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children first found, from /proc's parent links)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError), open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        kids = [p for p, parent in parents.items() if parent == todo[0]]
        found += kids
        todo = todo[1:] + kids
    return found


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names ``text`` (a podman's conmon and its container)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(entry))
    return out


class SshServer:
    """A private OpenSSH server on 127.0.0.1 (a free port) that lets one throwaway key in, for
    ``ssh://`` engines: its own host key, ``authorized_keys``, config and pid file under one
    temp dir, no PAM, no passwords. Sessions get ``DOCKER_HOST`` (``docker_host``), so the
    ``docker system dial-stdio`` an ``ssh://`` client runs reaches that engine.

    :attr:`env` puts a ``ssh`` first on ``PATH`` that is the system's with this server's
    client config (``-F``: the key, a ``known_hosts`` with the host key, batch mode), so the
    docker SDK's ``ssh`` (it runs the binary on ``PATH``) and the docker CLI use them without
    touching ``~/.ssh``. Stopped (the server and its sessions) and its dir removed on exit::

        with SshServer(docker_host=d.host) as sshd:
            os.environ.update(sshd.env()); DockerBackend(sshd.url)
    """

    def __init__(self, docker_host: str, user: str = "root") -> None:
        self.docker_host, self.user = docker_host, user
        self.base = tempfile.mkdtemp(prefix="ipydock-sshd-")
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._made_privsep = False

    def _keygen(self, name: str) -> str:
        path = os.path.join(self.base, name)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path],
                       check=True, capture_output=True)  # fmt: skip
        with open(path + ".pub") as f:
            return f.read().strip()

    def _write(self, name: str, text: str, mode: int = 0o600) -> str:
        path = os.path.join(self.base, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def start(self, timeout: float = 30) -> SshServer:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            raise FileNotFoundError("sshd not found: apt-get install openssh-server")
        if not os.path.isdir("/run/sshd"):  # privilege separation: sshd insists on it
            os.makedirs("/run/sshd", mode=0o755)
            self._made_privsep = True
        b = self.base
        host_pub = self._keygen("host_key")
        authorized = self._write("authorized_keys", self._keygen("client_key") + "\n")
        self.port = free_port()
        config = self._write("sshd_config", "\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {b}/host_key",
            f"AuthorizedKeysFile {authorized}", f"PidFile {b}/sshd.pid", "UsePAM no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "StrictModes no", "PrintMotd no",
            f"AllowUsers {self.user}", f"SetEnv DOCKER_HOST={self.docker_host}", "",
        ]))  # fmt: skip
        self._write("known_hosts", f"[127.0.0.1]:{self.port} {host_pub}\n")
        self._write("ssh_config", "\n".join([
            "Host 127.0.0.1", f"  IdentityFile {b}/client_key", "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {b}/known_hosts", "  StrictHostKeyChecking yes",
            "  BatchMode yes", "  LogLevel ERROR", "",
        ]))  # fmt: skip
        os.makedirs(os.path.join(b, "bin"))
        ssh = shutil.which("ssh") or "/usr/bin/ssh"
        self._write("bin/ssh", f'#!/bin/sh\nexec {ssh} -F {b}/ssh_config "$@"\n', 0o755)
        log = open(os.path.join(b, "sshd.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", config], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()
        self.url = f"ssh://{self.user}@127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while not self._answers():  # the banner: it listens (the event, not a fixed time)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start: {self.log_tail()}")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def env(self) -> dict[str, str]:
        """The environment for a client of this server (its ``ssh`` first on ``PATH``)."""
        return {**os.environ, "PATH": f"{self.base}/bin:{os.environ.get('PATH', '')}"}

    def log_tail(self) -> str:
        with contextlib.suppress(OSError), open(os.path.join(self.base, "sshd.log")) as f:
            return f.read()[-2000:]
        return ""

    def stop(self) -> None:
        """The server and every session it forked (they leave its process group), the clients
        that ran its ``ssh``, then its files."""
        if self.proc is not None:
            for pid in [*_descendants(self.proc.pid), self.proc.pid]:  # sessions setsid()
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None
        for pid in _pids_mentioning(f"{self.base}/"):  # sessions that left the group, clients
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        shutil.rmtree(self.base, ignore_errors=True)
        if self._made_privsep:
            with contextlib.suppress(OSError):
                os.rmdir("/run/sshd")

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CommandServer:
    """``python -m ipydock.cli.server serve`` in a private runtime dir; :attr:`env` points the
    ``ipydock`` command at it. Started when it takes commands (not after a fixed time)::

        with CommandServer() as server:
            subprocess.run(["ipydock", "image", "ls"], env=server.env)
    """

    def __init__(self, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="ipydock-run-")
        self.cwd = cwd  # `python -m` puts the working directory first on sys.path
        self.env = {**(env or os.environ), "IPYDOCK_RUNTIME_DIR": self.dir}
        self.env.pop("IPYDOCK_SERVER", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CommandServer:
        import sys

        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ipydock.cli.server", "serve", "--ready-fd", str(w)],
            env=self.env, pass_fds=[w], stdin=subprocess.DEVNULL, cwd=self.cwd,
        )  # fmt: skip
        os.close(w)
        with os.fdopen(r, "rb") as ready:
            if ready.readline() != b"ready\n":
                self.stop()
                raise RuntimeError("the command server did not start")
        return self

    def stop(self) -> None:
        """Stop it, and any other server in its dir (after a source change, a caller starts a
        new one in the background), then remove the dir."""
        from ipydock.cli import server

        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None
        server.stop(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> CommandServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _mounts_under(base: str) -> Iterator[str]:
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    for t in sorted(targets, key=len, reverse=True):
        if t.startswith(base.rstrip("/") + "/"):
            yield t


REGISTRY_BINARY = "/usr/bin/docker-registry"


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 now (for a server about to start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    """A real CNCF distribution registry (Debian's ``docker-registry``) on 127.0.0.1.

    Config, storage and (with ``users``) an htpasswd file live in a temp dir named
    ``PREFIX…``; the port is picked free at start; ``auth_yaml`` replaces the auth section
    (token auth); ``tls`` (certificate, key) serves https; ``netns`` (``/proc/PID/ns/net``)
    serves inside that network namespace. :meth:`stop` kills the process and removes the dir.
    """

    def __init__(
        self, users: dict[str, str] | None = None, auth_yaml: str = "", netns: str = "",
        prefix: str = "ipydock-registry-", tls: tuple[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.netns = netns  # /proc/PID/ns/net: serve inside that network namespace
        self.users = users or {}
        self.auth_yaml = auth_yaml  # e.g. token auth: see token_issuer.py
        self.tls = tls  # (certificate, key) files: serve https
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        auth = self.auth_yaml
        if self.users:
            htpasswd = os.path.join(self.dir, "htpasswd")
            for i, (user, password) in enumerate(self.users.items()):
                flags = "-Bbc" if i == 0 else "-Bb"
                subprocess.run(["htpasswd", flags, htpasswd, user, password], check=True,
                               capture_output=True)  # fmt: skip
            auth = f"auth:\n  htpasswd:\n    realm: ipdr\n    path: {htpasswd}\n"
        tls = ""
        if self.tls:
            tls = f"  tls:\n    certificate: {self.tls[0]}\n    key: {self.tls[1]}\n"
        for _ in range(5):  # another process may take the free port first: try another
            self.port = free_port()
            config = os.path.join(self.dir, "config.yml")
            with open(config, "w") as f:
                f.write(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n{tls}{auth}"
                )
            log = open(os.path.join(self.dir, "log"), "wb")  # noqa: SIM115
            wrapper = ["nsenter", f"--net={self.netns}", "--"] if self.netns else []
            command = [*wrapper, REGISTRY_BINARY, "serve", config]
            self.proc = subprocess.Popen(command, stdout=log, stderr=log)
            log.close()
            if self._wait_ready():
                return self
            self._kill()
        raise RuntimeError(f"docker-registry did not start: {self.log()}")

    def _wait_ready(self, timeout: float = 20.0) -> bool:
        """Until GET /v2/ answers (200, or 401 with auth), or the process dies."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.netns:  # not reachable from here: its log says when it listens
                if f"listening on 127.0.0.1:{self.port}" in self.log():
                    return True
                time.sleep(0.05)
                continue
            try:
                import httpx

                r = httpx.get(f"http://{self.host}/v2/", timeout=1.0)
                if r.status_code in (200, 401, 400):  # 400: plain http to its TLS port
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def blob_path(self, digest: str) -> str:
        """Where the registry keeps a blob's bytes (tests tamper with it)."""
        hexpart = digest.removeprefix("sha256:")
        return os.path.join(
            self.dir, "data", "docker", "registry", "v2", "blobs", "sha256", hexpart[:2],
            hexpart, "data",
        )  # fmt: skip

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServiceProcess:
    """``ipydock system service`` on a private socket, for the docker CLI and SDK, as
    :class:`Dockerd` is a private dockerd: ``run("ps")`` runs Debian's docker client against
    it. Started when it says it listens (its first stderr line), stopped with SIGTERM."""

    def __init__(self, root: str, base: str | None = None, *, user_env: dict[str, str] | None
                 = None) -> None:  # fmt: skip
        self.root = root
        self.base = base or tempfile.mkdtemp(prefix="ipydock-service-")
        self.socket = os.path.join(self.base, "docker.sock")
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._env = user_env

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0", **extra}

    def start(self) -> ServiceProcess:
        import sys

        env = {**(self._env or os.environ), "IPYDOCK_SERVER": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ipydock", "--root", self.root, "system", "service",
             "--time", "0", self.host],
            stderr=subprocess.PIPE, env=env, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        first = self.proc.stderr.readline().decode()
        if "serving" not in first:
            self.stop()
            raise RuntimeError(f"the service did not start: {first}")
        import threading

        self._log: list[bytes] = []  # drained as it comes: a full pipe would stop the service
        stderr = self.proc.stderr
        self._drain = threading.Thread(target=lambda: self._log.extend(stderr), daemon=True)
        self._drain.start()
        return self

    def run(
        self, *args: str, check: bool = True, input: bytes | None = None, **kw: object
    ) -> subprocess.CompletedProcess[bytes]:
        docker = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
        return subprocess.run(
            [docker, *args], env=self.env(), capture_output=True, check=check, input=input,
            timeout=300, **kw,
        )  # type: ignore[call-overload]  # fmt: skip

    def stop(self) -> str:
        """Stop it; what it wrote on stderr (tracebacks of internal errors, if any)."""
        log = ""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            if hasattr(self, "_drain"):
                self._drain.join()
                log = b"".join(self._log).decode(errors="replace")
        self.proc = None
        shutil.rmtree(self.base, ignore_errors=True)
        return log

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
