"""What ipydock pushes validates against the OCI image-spec JSON schemas (Debian's
golang-github-opencontainers-image-spec-dev ships them): the manifest, the config, and the
manifest of a pulled image as the store keeps it."""

from __future__ import annotations

import json
import os

from ipydock.backends import BundledBackend
from ipydock.engine.registry.client import Registry
from tests.conftest import require

SCHEMAS = "/usr/share/gocode/src/github.com/opencontainers/image-spec/schema"


def _validator(name: str):  # type: ignore[no-untyped-def]
    require(os.path.isdir(SCHEMAS), "golang-github-opencontainers-image-spec-dev not installed")
    from jsonschema import Draft4Validator
    from referencing import Registry as Refs
    from referencing import Resource
    from referencing.jsonschema import DRAFT4

    def load(file: str) -> Resource:
        with open(os.path.join(SCHEMAS, file)) as f:
            return Resource.from_contents(json.load(f), default_specification=DRAFT4)

    refs = Refs(retrieve=lambda uri: load(uri.rsplit("/", 1)[-1]))  # type: ignore[call-arg]
    return Draft4Validator(load(name).contents, registry=refs)


def test_pushed_manifest_and_config_validate(
    backend: BundledBackend, busybox: str, repo: str, other: BundledBackend
) -> None:
    schema = "image-manifest-schema.json"
    backend.tag("busybox", f"{repo}:schema")
    backend.push(f"{repo}:schema")
    host, name = repo.split("/", 1)
    with Registry(host) as reg:
        body, _ = reg.get_manifest(name, "schema", "schema")
        manifest = json.loads(body)
        resp = reg.open_blob(name, manifest["config"]["digest"])
        config = json.loads(resp.read())
        resp.close()
    _validator(schema).validate(manifest)
    _validator("config-schema.json").validate(config)
    other.pull(f"{repo}:schema")
    store = other.store  # type: ignore[attr-defined]
    rec = store.resolve(f"{repo}:schema")
    _validator(schema).validate(store.manifest(rec))
    with open(os.path.join(store.root, "index.json")) as f:
        _validator("image-index-schema.json").validate(json.load(f))
    broken = {**manifest, "layers": [{"digest": "sha256:nothex"}]}
    assert list(_validator(schema).iter_errors(broken))  # the schemas do check
