"""The supervisor's side of bridge networking: wire pid 1's netns between spawn and exec.

::

    spawn(paused) --ready--> wire(): Networks.attach (veth, address, route, /etc/hosts)
                  --"g"----> exec                        (a failure: pid 1 is told to give up)
    pid 1 exits   --------> unwire(): the endpoints are forgotten, peers' /etc/hosts rewritten
                             (the veth went with the netns)

Rootless containers get no bridge: the default network is slirp4netns (``network/slirp.py``:
the way out, ``-p`` above 1024), or loopback only where it is not installed; a named network
is refused with what to use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import signal
import sys
from typing import Any

from ipydock.engine.network.bridge import Networks, is_bridged
from ipydock.engine.runtime.spec import Spec

__all__ = ["SlirpChannel", "delete_links", "unwire", "wants_wiring", "wire", "with_link_env"]


def _root(containers_dir: str) -> str:
    return os.path.dirname(containers_dir.rstrip("/"))


def wants_wiring(config: dict[str, Any], rootless: bool) -> bool:
    """Root: bridged modes. Rootless: the default network, through slirp4netns (without it,
    loopback only, as ``--network none``)."""
    mode = config["HostConfig"].get("NetworkMode") or "none"
    if not is_bridged(mode):
        return False
    if rootless:
        from ipydock.engine.network import slirp

        if mode in ("default", "bridge"):
            return slirp.available()
        raise slirp.refusal(mode)
    return True


def with_link_env(containers_dir: str, config: dict[str, Any], spec: Spec) -> Spec:
    """``--link`` variables added to the environment (before the image's own)."""
    extra = Networks(_root(containers_dir)).link_env(config)
    return dataclasses.replace(spec, env=(*extra, *spec.env)) if extra else spec


def wire(
    containers_dir: str, cid: str, config: dict[str, Any], child: Any, *, rootless: bool = False
) -> dict[str, Any] | None:
    """Attach the paused pid 1 and let it exec; the next report (None: it exec'd), or the
    failure as a report (pid 1 is cancelled: it exits 137 without running anything)."""
    from ipydock.engine.runtime.spawn import read_report
    from ipydock.errors import IPyDockError

    nets = Networks(_root(containers_dir))
    try:
        if rootless:
            _slirp(containers_dir, cid, config, child.pid)
        else:
            endpoints = nets.attach(cid, config, child.pid)
            _resolver(containers_dir, nets, cid, child.pid, endpoints)
            _publish(containers_dir, cid, config, endpoints)
    except (IPyDockError, OSError) as exc:
        unwire(containers_dir, cid, rootless=rootless)
        os.write(child.go_fd, b"x")  # not "g": pid 1 gives up ("start was cancelled")
        os.close(child.go_fd)
        read_report(child.report_fd)
        return {"step": "network", "errno": getattr(exc, "errno", 0) or 0,
                "detail": str(exc), "exit_code": 125}  # fmt: skip
    os.write(child.go_fd, b"g")
    os.close(child.go_fd)
    return read_report(child.report_fd)


_HELPERS: dict[str, list[int]] = {}  # container id -> its resolver's pid


def _resolver(
    containers_dir: str, nets: Networks, cid: str, pid: int, endpoints: list[dict[str, Any]]
) -> None:
    """On a user-defined network: docker's embedded DNS at 127.0.0.11 in the container."""
    from ipydock.engine.network import dns

    default = nets.default()
    if all(default is not None and ep["Network"] == default["Id"] for ep in endpoints):
        return
    sock = dns.bind_in(pid)
    try:
        _HELPERS.setdefault(cid, []).append(dns.start_resolver(sock, dns.lookup_for(nets, cid)))
    finally:
        sock.close()
    path = os.path.join(containers_dir, cid, "resolv.conf")
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # bind-mounted: rewritten in place
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"nameserver {dns.ADDRESS}\noptions ndots:0\n".encode(), 0)
    finally:
        os.close(fd)


def _publish(
    containers_dir: str, cid: str, config: dict[str, Any], endpoints: list[dict[str, Any]]
) -> None:
    """Hold the published host ports and DNAT them to the container (the kernel forwards);
    ``ports.json`` says what was bound."""
    from ipydock.engine.network import bridge, firewall, ports
    from ipydock.errors import NotSupported

    wanted = ports.from_host_config(config["HostConfig"].get("PortBindings"))
    path = os.path.join(containers_dir, cid, "ports.json")
    if not wanted or not endpoints:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    if not firewall.available():
        raise NotSupported("-p", "bundled", "published ports are forwarded by iptables rules: "
                           "install iptables (apt-get install iptables)")  # fmt: skip
    socks, bound = ports.bind(wanted)
    _HELD[cid] = socks
    ep = endpoints[0]
    rules = ports.rules((ep["Pid"], ep["Start"]), ep["IPv4"], bound)
    if not firewall.add_ports(rules, bridge._alive):
        raise NotSupported("-p", "bundled", "iptables refused the port forwarding rules "
                           "(see `iptables -t nat -S IPYDOCK`)")  # fmt: skip
    _RULES[cid] = rules
    with open(path + ".tmp", "w") as f:
        json.dump([dataclasses.asdict(b) for b in bound], f)
    os.replace(path + ".tmp", path)


def _slirp(containers_dir: str, cid: str, config: dict[str, Any], pid: int) -> None:
    """Rootless: ask the supervisor (outside the container's namespaces) for slirp4netns."""
    if SlirpChannel.current is None:
        return  # not started by a supervisor that offers one: loopback only
    SlirpChannel.current.request(pid, bool(config["HostConfig"].get("PortBindings")))


class SlirpChannel:
    """How a rootless runner gets slirp4netns for its paused pid 1.

    The runner lives in the user namespace and has moved its children into the container's
    pid namespace; a slirp4netns it forked would be a member, killed with pid 1 and left for
    the runner to reap while the runner waits for pid 1: a deadlock. So the supervisor, in
    the host's namespaces, starts it (slirp4netns joins the container's user and network
    namespaces itself) in a thread that answers the runner on a pipe pair::

        runner --"PID\n"--> supervisor: slirp.start(PID), -p through its API, ports.json
        runner <--"ok" | JSON error-- supervisor        (slirp4netns stopped at close())
    """

    current: SlirpChannel | None = None  # the runner's

    def __init__(self) -> None:
        self.ask_r, self.ask_w = os.pipe2(os.O_CLOEXEC)
        self.answer_r, self.answer_w = os.pipe2(os.O_CLOEXEC)
        self.pipes = (os.fstat(self.ask_w).st_ino, os.fstat(self.answer_r).st_ino)
        self.thread: Any = None
        self.running: Any = None

    def as_runner(self) -> None:
        os.close(self.ask_r)
        os.close(self.answer_w)
        SlirpChannel.current = self

    def request(self, pid: int, ports: bool = False) -> None:
        from ipydock.errors import InvalidNetworkConfig, NotSupported

        # the netns of pid 1 opened here (we are root in its user namespace; the supervisor,
        # outside, may not open /proc/PID/ns/net of an id of the user's range), and named to
        # the supervisor as /proc/OUR_PID/fd/N, which it may open: we are its user
        try:
            if (os.fstat(self.ask_w).st_ino, os.fstat(self.answer_r).st_ino) != self.pipes:
                raise OSError(errno.EBADF, "the channel's pipes were closed")
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        except OSError:
            # a user with an id range: pid 1 already runs as another id of the range (not
            # ours to enter) and the runner is not the one that was forked with the channel:
            # no slirp4netns, loopback only, as before it (ports cannot be served then)
            if ports:
                why = "ports of a container whose user is another id of your range need root"
                raise NotSupported("-p", "bundled", why) from None
            with contextlib.suppress(OSError):  # the runner's stderr may be gone
                print("ipydock: no slirp4netns for a container whose user is another id of "
                      "the user's range: loopback only", file=sys.stderr)  # fmt: skip
            return
        try:
            os.write(self.ask_w, f"{pid} {os.getpid()} {fd}\n".encode())
            answer = b""
            while chunk := os.read(self.answer_r, 65536):
                answer += chunk
                if answer.endswith(b"\n"):
                    break
        finally:
            os.close(fd)
        reply = json.loads(answer or b'{"error": "the supervisor did not answer"}')
        if "error" in reply:
            if reply.get("flag"):
                raise InvalidNetworkConfig(reply["flag"], reply["error"])
            raise NotSupported("the default network", "bundled", reply["error"])

    def serve(self, containers_dir: str, cid: str, config: dict[str, Any]) -> None:
        import threading

        os.close(self.ask_w)
        os.close(self.answer_r)
        self.thread = threading.Thread(target=self._serve, args=(containers_dir, cid, config),
                                       name="slirp", daemon=True)  # fmt: skip
        self.thread.start()

    def _serve(self, containers_dir: str, cid: str, config: dict[str, Any]) -> None:
        from ipydock.engine.network import ports, slirp
        from ipydock.errors import InvalidNetworkConfig, IPyDockError

        with os.fdopen(self.ask_r, "rb") as asks, os.fdopen(self.answer_w, "wb") as answers:
            line = asks.readline()
            if not line:
                return  # the runner never asked (no wiring, or it died)
            reply: dict[str, Any] = {"ok": True}
            try:
                pid, runner, fd = (int(w) for w in line.split())
                self.running = slirp.start(pid, f"/proc/{runner}/fd/{fd}",
                                           f"/proc/{runner}/ns/user")  # fmt: skip
                wanted = ports.from_host_config(config["HostConfig"].get("PortBindings"))
                if wanted:
                    bound = self.running.publish(wanted)
                    path = os.path.join(containers_dir, cid, "ports.json")
                    with open(path + ".tmp", "w") as f:
                        json.dump([dataclasses.asdict(b) for b in bound], f)
                    os.replace(path + ".tmp", path)
            except InvalidNetworkConfig as exc:
                reply = {"error": exc.why, "flag": exc.field}
            except IPyDockError as exc:
                reply = {"error": getattr(exc, "hint", "") or str(exc)}
            answers.write(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        """After the run: slirp4netns goes, and what said which ports it held."""
        if self.thread is not None:
            self.thread.join()
        if self.running is not None:
            self.running.stop()
            self.running = None


_HELD: dict[str, list[Any]] = {}  # container id -> the sockets that hold its host ports
_RULES: dict[str, list[str]] = {}  # container id -> its DNAT rules


def unwire(
    containers_dir: str, cid: str, *, rootless: bool = False, keep_links: bool = False
) -> list[str]:
    """Undo :func:`wire` after pid 1 exited: port rules, held ports, helpers, addresses. With
    ``keep_links``, the veths are returned for :func:`delete_links`, to be deleted after the
    starter has been let go (a ``--rm`` container, whose veth names are its own alone)."""
    from ipydock.engine.network import firewall

    if rootless:  # nothing of ours on the host but slirp4netns, which the supervisor stops
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(containers_dir, cid, "ports.json"))
        return []
    firewall.remove_ports(_RULES.pop(cid, []))
    for sock in _HELD.pop(cid, []):
        sock.close()
    for pid in _HELPERS.pop(cid, []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(containers_dir, cid, "ports.json"))
    return Networks(_root(containers_dir)).release(cid, keep_links=keep_links)


def delete_links(names: list[str]) -> None:
    """Delete the veths :func:`unwire` kept (gone already, e.g. with their netns: fine)."""
    from ipydock.engine.network import netlink

    for name in names:
        netlink.delete_link(name)
