"""Reference parsing and normalisation, against distribution/reference's rules (pure)."""

import pytest

from ipydock.engine.registry.reference import familiar_parts, parse
from ipydock.errors import InvalidReference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox", "busybox"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("me/app:v1", "docker.io/me/app:v1", "me/app:v1"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/me/app", "docker.io/me/app", "me/app"),
        ("localhost:5000/app:2", "localhost:5000/app:2", "localhost:5000/app:2"),
        ("localhost/app", "localhost/app", "localhost/app"),
        ("quay.io/a/b/c:t", "quay.io/a/b/c:t", "quay.io/a/b/c:t"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        ("a.b_c__d-e--f", "docker.io/library/a.b_c__d-e--f", "a.b_c__d-e--f"),
    ],
)
def test_valid_references_normalise(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert ref.full == full
    assert ref.familiar == familiar


@pytest.mark.parametrize(
    "text", ["busybox:1", "me/app:v1", "localhost:5000/app:2", "quay.io/a/b:c", "localhost:5000/x"]
)
def test_familiar_parts_agrees_with_parse(text: str) -> None:
    ref = parse(text)
    assert familiar_parts(ref.full) == (ref.familiar_repository, ref.tag or "<none>")


def test_default_tag_is_latest_but_not_for_digests() -> None:
    assert parse("busybox").with_default_tag().full == "docker.io/library/busybox:latest"
    assert parse(f"busybox@{DIGEST}").with_default_tag().tag is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Busybox",
        "busybox:",
        "busy box",
        "-app",
        "app-",
        "a//b",
        "app:tag with space",
        "app@sha256:short",
        "a" * 64,
        ":tag",
        "app:" + "t" * 129,
        " app",
    ],
)
def test_invalid_references_raise_with_the_text(text: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert info.value.text == text
    assert "\n" not in str(info.value)
