"""login / logout and basic auth against a docker-registry with an htpasswd file; docker's
config.json as docker writes it; challenge parsing."""

from __future__ import annotations

import base64
import json
import os

import pytest

from ipydock.backends import BundledBackend
from ipydock.commands import credentials as auth
from ipydock.commands.credentials import server_domain
from ipydock.engine.registry import auth as challenge
from ipydock.engine.registry.transport import is_insecure
from ipydock.errors import RegistryAuthFailed
from ipydock.testing import LocalRegistry
from tests.registry.conftest import PASSWORD, USER


def _config(docker_config: str) -> dict:
    with open(os.path.join(docker_config, "config.json")) as f:
        return json.load(f)


def test_login_push_pull_logout_with_basic_auth(
    backend: BundledBackend, busybox: str, auth_registry: LocalRegistry, docker_config: str,
    other: BundledBackend,
) -> None:  # fmt: skip
    name = f"{auth_registry.host}/ipdr/private:1"
    backend.tag("busybox", name)
    with pytest.raises(RegistryAuthFailed, match=f"ipydock login {auth_registry.host}"):
        backend.push(name)  # anonymous

    assert backend.login(auth_registry.host, USER, PASSWORD) == "Login Succeeded"
    entry = _config(docker_config)["auths"][auth_registry.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert os.stat(os.path.join(docker_config, "config.json")).st_mode & 0o077 == 0

    pushed = backend.push(name)
    assert other.pull(name).digest == pushed.digest

    assert (
        backend.logout(auth_registry.host) == f"Removing login credentials for {auth_registry.host}"
    )
    assert auth_registry.host not in _config(docker_config)["auths"]
    assert backend.logout(auth_registry.host) == f"Not logged in to {auth_registry.host}"
    with pytest.raises(RegistryAuthFailed):
        BundledBackend(other.store).pull(name)  # type: ignore[attr-defined]


def test_wrong_credentials_are_refused_and_not_stored(
    backend: BundledBackend, auth_registry: LocalRegistry, docker_config: str
) -> None:
    with pytest.raises(RegistryAuthFailed, match="wrong username or password") as info:
        backend.login(auth_registry.host, USER, "not-the-password")
    assert info.value.status == 401
    assert not os.path.exists(os.path.join(docker_config, "config.json"))
    # credentials that went stale in config.json: one clear error on pull
    auth.store(auth_registry.host, auth.Credentials(USER, "stale"))
    with pytest.raises(RegistryAuthFailed, match="wrong username or password"):
        backend.pull(f"{auth_registry.host}/ipdr/private:1")


def test_login_keeps_other_keys_of_config_json(
    backend: BundledBackend, auth_registry: LocalRegistry, docker_config: str
) -> None:
    os.makedirs(docker_config)
    with open(os.path.join(docker_config, "config.json"), "w") as f:
        json.dump({"auths": {"other.example:5000": {"auth": "eDp5"}}, "psFormat": "{{.ID}}"}, f)
    backend.login(f"http://{auth_registry.host}/v2/", USER, PASSWORD)
    doc = _config(docker_config)
    assert doc["psFormat"] == "{{.ID}}"
    assert set(doc["auths"]) == {"other.example:5000", auth_registry.host}


def test_cli_login_with_password_stdin(ipd, auth_registry: LocalRegistry, docker_config) -> None:
    proc = ipd("login", "-u", USER, "--password-stdin", auth_registry.host, input=PASSWORD + "\n")
    assert proc.stdout == "Login Succeeded\n"
    assert auth.lookup(auth_registry.host) == auth.Credentials(USER, PASSWORD)
    bad = ipd("login", "-u", USER, "-p", "nope", auth_registry.host, check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("WARNING! Using --password via the CLI is insecure.")
    assert bad.stderr.splitlines()[-1].startswith(f"Error: registry {auth_registry.host}:")
    assert ipd("logout", auth_registry.host).stdout.startswith("Removing login credentials")


def test_docker_hub_names_and_keys() -> None:
    assert server_domain(None) == "docker.io"
    assert server_domain("https://index.docker.io/v1/") == "docker.io"
    assert auth.server_key("docker.io") == "https://index.docker.io/v1/"
    assert server_domain("localhost:5000") == "localhost:5000"
    assert auth.server_key("localhost:5000") == "localhost:5000"


def test_plain_http_only_for_loopback(monkeypatch) -> None:
    monkeypatch.delenv("IPYDOCK_INSECURE_REGISTRIES", raising=False)
    assert is_insecure("localhost:5000") and is_insecure("127.0.0.1:5000")
    assert is_insecure("[::1]:5000")
    assert not is_insecure("registry.example.com")
    monkeypatch.setenv("IPYDOCK_INSECURE_REGISTRIES", "registry.example.com:5000")
    assert is_insecure("registry.example.com:5000")


def test_challenge_parsing() -> None:
    c = challenge.parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert c is not None and c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    basic = challenge.parse_challenge('Basic realm="ipdr"')
    assert basic is not None and (basic.scheme, basic.params) == ("basic", {"realm": "ipdr"})


def test_bearer_token_flow_with_a_scope_per_repository(
    backend: BundledBackend, busybox: str, token_registry: LocalRegistry, other: BundledBackend
) -> None:
    issuer = token_registry.issuer  # type: ignore[attr-defined]
    name = f"{token_registry.host}/ipdr/tok:1"
    backend.tag("busybox", name)
    with pytest.raises(RegistryAuthFailed):
        backend.push(name)  # anonymous: the issuer grants nothing
    issuer.requests.clear()
    assert backend.login(token_registry.host, USER, PASSWORD) == "Login Succeeded"
    pushed = backend.push(name)
    scopes = {s for q in issuer.requests for s in q.get("scope", [])}
    assert "repository:ipdr/tok:pull,push" in scopes
    assert {q["service"][0] for q in issuer.requests} == {"ipdr-registry"}
    issuer.requests.clear()
    assert other.pull(name).digest == pushed.digest
    assert {s for q in issuer.requests for s in q.get("scope", [])} == {"repository:ipdr/tok:pull"}
    with pytest.raises(RegistryAuthFailed, match="wrong username or password"):
        backend.login(token_registry.host, USER, "wrong")


HELPER = """#!/usr/bin/python3
import json, os, sys
path = os.environ["IPDR_HELPER_STORE"]
data = json.load(open(path)) if os.path.exists(path) else {}
action, text = sys.argv[1], sys.stdin.read().strip()
if action == "store":
    item = json.loads(text)
    data[item["ServerURL"]] = item
elif action == "get":
    if text not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps(data[text]))
elif action == "erase":
    data.pop(text, None)
json.dump(data, open(path, "w"))
"""


def test_credential_helpers_from_cred_helpers(
    backend: BundledBackend, busybox: str, auth_registry: LocalRegistry, docker_config: str,
    tmp_path, monkeypatch, other: BundledBackend,
) -> None:  # fmt: skip
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-ipdr"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    kept = tmp_path / "helper-store.json"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("IPDR_HELPER_STORE", str(kept))
    os.makedirs(docker_config)
    with open(os.path.join(docker_config, "config.json"), "w") as f:
        json.dump({"credHelpers": {auth_registry.host: "ipdr"}}, f)

    backend.login(auth_registry.host, USER, PASSWORD)
    assert json.loads(kept.read_text())[auth_registry.host]["Secret"] == PASSWORD
    assert _config(docker_config)["auths"][auth_registry.host] == {}  # no secret in the file
    name = f"{auth_registry.host}/ipdr/helper:1"
    backend.tag("busybox", name)
    backend.push(name)
    assert other.pull(name).id == busybox
    backend.logout(auth_registry.host)
    assert json.loads(kept.read_text()) == {}
    with pytest.raises(RegistryAuthFailed):
        other.pull(name)


def test_a_missing_credential_helper_warns_and_goes_on(
    backend: BundledBackend, busybox: str, repo: str, docker_config: str
) -> None:
    from ipydock.errors import IPyDockWarning

    os.makedirs(docker_config)
    with open(os.path.join(docker_config, "config.json"), "w") as f:
        json.dump({"credsStore": "ipdr-not-installed"}, f)
    backend.tag("busybox", f"{repo}:nohelper")
    with pytest.warns(IPyDockWarning, match="docker-credential-ipdr-not-installed"):
        assert backend.push(f"{repo}:nohelper").tag == "nohelper"
