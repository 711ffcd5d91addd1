"""Remote engines: a dockerd that speaks TLS over TCP, reached by flags, by the environment and
by a docker context; a wrong certificate is refused in one line. A dockerd reached over ssh
(a private sshd on 127.0.0.1 that lets one throwaway key in: ``SshServer``).

The dockerd runs in a network namespace the test made, joined to the host by a veth pair with
test addresses (10.232.N.1 on the host side, .2 inside): its TCP port is reachable from the test
and from nothing else, and a dockerd there cannot touch the host's bridges.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute, NetNS, netns

from ipydock import backends
from ipydock.docker import DockerBackend
from ipydock.docker.endpoint import resolve
from ipydock.errors import EngineUnavailable, UsageError
from ipydock.testing import Dockerd, SshServer, _pids_mentioning, free_port
from tests.conftest import require

pytestmark = [pytest.mark.docker]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path, ip: str) -> None:
    """A CA, a server certificate for ``ip`` and a client certificate, as docker's TLS guide
    makes them (and a second CA that signed none of them)."""
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 f"/CN={ca}", "-keyout", f"{ca}-key.pem", "-out", f"{ca}.pem", cwd=d)  # fmt: skip
    for name, ext in (("server", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout",
                 f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out",
                 f"{name}.pem", cwd=d)  # fmt: skip


class TLSEngine:
    def __init__(self, url: str, certs: Path) -> None:
        self.url, self.certs = url, certs

    def tls(self, ca: str = "ca.pem") -> dict[str, object]:
        c = self.certs
        return {"tlsverify": True, "tlscacert": str(c / ca), "tlscert": str(c / "client.pem"),
                "tlskey": str(c / "client-key.pem")}  # fmt: skip


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSEngine]:
    require(os.geteuid() == 0, "a private dockerd needs root")
    require(shutil.which("openssl") is not None, "openssl is not installed")
    n = os.getpid() % 250 + 1
    ns, host_if, addr = f"ipdtls-{os.getpid()}", f"ipdtls{n}", f"10.232.{n}"
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs, f"{addr}.2")
    netns.create(ns)
    engine: Dockerd | None = None
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=host_if, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
            idx = ipr.link_lookup(ifname=host_if)[0]
            ipr.addr("add", index=idx, address=f"{addr}.1", prefixlen=24)
            ipr.link("set", index=idx, state="up")
        with NetNS(ns) as nsr:
            for ifname in ("lo", "eth0"):
                nsr.link("set", index=nsr.link_lookup(ifname=ifname)[0], state="up")
            nsr.addr("add", index=nsr.link_lookup(ifname="eth0")[0], address=f"{addr}.2",
                     prefixlen=24)  # fmt: skip
        url = f"tcp://{addr}.2:2376"
        engine = Dockerd(netns=ns, flags=(
            "--iptables=false", "--bridge=none", "-H", url, "--tlsverify",
            f"--tlscacert={certs}/ca.pem", f"--tlscert={certs}/server.pem",
            f"--tlskey={certs}/server-key.pem"))  # fmt: skip
        engine.start()
        yield TLSEngine(url, certs)
    finally:
        if engine is not None:
            engine.stop()
        with contextlib.suppress(Exception), IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=host_if):
                ipr.link("del", index=idx)
        with contextlib.suppress(OSError):
            netns.remove(ns)


def test_tls_flags(tls_engine: TLSEngine, busybox_tgz: str) -> None:
    """The engine answers over TLS, and an exec's input and output share the TLS stream (one
    thread writes it while another reads)."""
    import io

    from ipydock.models import RunOptions

    b = backends.connect("docker", host=tls_engine.url, tls=tls_engine.tls())
    try:
        assert b.info()["host"] == tls_engine.url
        image = b.import_image(busybox_tgz, "tls-test/busybox:1", changes=['CMD ["sh"]'])
        b.run(RunOptions("tls-test/busybox:1", ("sleep", "60"), name="over-tls",
                         network="none"), detach=True)  # fmt: skip
        out = io.BytesIO()
        assert b.exec("over-tls", ["sh", "-c", "wc -c"], stdin=b"y" * 500_000,
                      stdout=out) == 0  # fmt: skip
        assert out.getvalue().strip() == b"500000"
    finally:
        with contextlib.suppress(Exception):
            b.remove_container("over-tls", force=True)
            b.remove_image(image, force=True)
        b.close()  # type: ignore[attr-defined]


def test_a_certificate_from_another_ca_is_refused(tls_engine: TLSEngine) -> None:
    with pytest.raises(EngineUnavailable, match="cannot reach the Docker engine at tcp://") as e:
        backends.connect("docker", host=tls_engine.url, tls=tls_engine.tls("other-ca.pem"))
    assert "\n" not in str(e.value) and "TLS: certificate verify failed" in str(e.value)


def test_without_a_client_certificate_the_engine_refuses(tls_engine: TLSEngine) -> None:
    ca_only = {"tlsverify": True, "tlscacert": str(tls_engine.certs / "ca.pem")}
    with pytest.raises(EngineUnavailable):
        backends.connect("docker", host=tls_engine.url, tls=ca_only)


def test_environment_as_docker_reads_it(tls_engine: TLSEngine, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for src, dst in (("ca.pem", "ca.pem"), ("client.pem", "cert.pem"),
                     ("client-key.pem", "key.pem")):  # fmt: skip
        shutil.copy(tls_engine.certs / src, tmp_path / dst)
    monkeypatch.setenv("DOCKER_HOST", tls_engine.url)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    b = backends.connect("docker")
    try:
        assert b.info()["server_version"]
    finally:
        b.close()  # type: ignore[attr-defined]


def test_a_context_docker_made(tls_engine: TLSEngine, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`docker context create` writes the context store; ipydock reads it by name, and the
    CLI's `-c NAME` and `%ipydock engine docker --context NAME` use it."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    c = tls_engine.certs
    docker = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
    subprocess.run([docker, "context", "create", "faraway", "--docker",
                    f"host={tls_engine.url},ca={c}/ca.pem,cert={c}/client.pem,"
                    f"key={c}/client-key.pem"], check=True, capture_output=True)  # fmt: skip
    endpoint = resolve(context="faraway")
    assert endpoint.host == tls_engine.url and endpoint.tls is not None and endpoint.tls.verify
    out = subprocess.run([sys.executable, "-m", "ipydock", "--context", "faraway", "info",
                          "--format", "json"], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["engine"], info["host"]) == ("docker", tls_engine.url)
    with pytest.raises(UsageError, match="context 'nowhere' does not exist"):
        resolve(context="nowhere")
    with pytest.raises(UsageError, match="either specify --host or --context"):
        resolve(host=tls_engine.url, context="faraway")


def test_without_the_docker_package_the_switch_says_what_to_install() -> None:
    """A user without the `docker` extra gets one line, not ModuleNotFoundError."""
    code = (
        "import sys; sys.modules['docker'] = None\n"  # as if it were not installed
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython(); ip.run_line_magic('load_ext', 'ipydock')\n"
        "r = ip.run_cell('%ipydock engine docker')\n"
        "print('ERROR', type(r.error_in_exec).__name__, r.error_in_exec)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert "ModuleNotFoundError" not in out.stdout + out.stderr
    assert "pip install 'ipydock[docker]'" in out.stdout + out.stderr, out


@pytest.fixture(scope="module")
def sshd(dockerd: Dockerd) -> Iterator[SshServer]:
    """A private sshd whose sessions reach the session's dockerd (``DOCKER_HOST`` set there)."""
    require(os.geteuid() == 0, "a private sshd here runs as root")
    require(shutil.which("sshd") is not None or os.path.exists("/usr/sbin/sshd"),
            "openssh-server is not installed")  # fmt: skip
    with SshServer(dockerd.host) as server:
        assert server.proc is not None
        pid = server.proc.pid
        yield server
    assert server.proc is None and not os.path.exists(server.base)  # stopped, files gone
    assert not os.path.exists(f"/proc/{pid}") and not _pids_mentioning(server.base)


def test_an_engine_over_ssh(sshd: SshServer, busybox_tgz: str, ip: object,
                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`%ipydock engine docker -H ssh://root@127.0.0.1:PORT` reaches the dockerd behind the
    sshd; images go up the tunnel, an exec's input and output come through it."""
    import io

    from ipydock.models import RunOptions

    monkeypatch.setenv("PATH", sshd.env()["PATH"])  # its ssh: the key, known_hosts
    info = ip.run_line_magic("ipydock", f"engine docker -H {sshd.url}")  # type: ignore[attr-defined]
    assert sshd.url in str(info)
    ip.run_line_magic("ipydock", "engine bundled")  # type: ignore[attr-defined]
    b = DockerBackend(sshd.url)
    try:
        assert b.info()["host"] == sshd.url
        image = b.import_image(busybox_tgz, "ssh-test/busybox:1", changes=['CMD ["sh"]'])
        b.run(RunOptions("ssh-test/busybox:1", ("sleep", "60"), name="over-ssh",
                         network="none"), detach=True)  # fmt: skip
        out = io.BytesIO()
        assert b.exec("over-ssh", ["sh", "-c", "wc -c; exit 3"], stdin=b"x" * 300_000,
                      stdout=out) == 3  # fmt: skip
        assert out.getvalue().strip() == b"300000"
    finally:
        b.remove_container("over-ssh", force=True)
        b.remove_image(image, force=True)
        b.close()
    from tests.engines.swarm import wait_for

    wait_for(lambda: not _pids_mentioning("dial-stdio"), "every ssh session to end", 30)


def test_ssh_refusals_are_one_line(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", sshd.env()["PATH"])
    with pytest.raises(EngineUnavailable) as e:  # sshd lets only root in
        DockerBackend(sshd.url.replace("root@", "nobody@"))
    text = str(e.value)
    assert "\n" not in text and "Permission denied (publickey)" in text
    assert "check that `ssh -l nobody -p" in text and "docker version` works" in text
    port = sshd.port
    with pytest.raises(EngineUnavailable, match="Connection refused"):
        DockerBackend(f"ssh://root@127.0.0.1:{free_port()}")
    assert sshd.port == port
    with pytest.raises(UsageError, match="ssh://\\[USER@\\]HOST"):
        DockerBackend("ssh://root@127.0.0.1/some/path")
