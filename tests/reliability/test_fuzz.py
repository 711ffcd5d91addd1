"""Hostile input, fuzzed with hypothesis: only the project's own errors, never a crash, a hang
or a write outside the target.

Targets: the Dockerfile parser and typed instructions, the shell-word expander, .dockerignore
patterns, image references, ``image ls`` filters and the CLI's ``--format``/``--filter``, layer
tars (names, links, sizes, types, PAX headers, damaged bytes), ``image load`` archives
(manifest.json / index.json), and registry answers as ``pull`` reads them.

"Own errors" are the classes of :mod:`ipydock.errors` (the shell expander's ExpansionError is
its module's error, turned into a DockerfileError at the builder's one boundary). A case that
runs longer than ``HANG`` seconds fails as a hang. The number of cases run is printed
("fuzz cases: N"); ``IPYDOCK_FUZZ_EXAMPLES`` sets the cases per target (default 300).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipydock.backends import BundledBackend
from ipydock.engine.builder.convert import parse_dockerfile
from ipydock.engine.builder.shell import ExpansionError, expand, words
from ipydock.engine.registry import reference
from ipydock.engine.store import Store, images
from ipydock.engine.store.check import check
from ipydock.engine.store.fsutil import remove_tree
from ipydock.engine.store.untar import apply_tar
from ipydock.errors import IPyDockError
from ipydock.testing import layer_tar, make_docker_archive
from tests.reliability.counts import record

EXAMPLES = int(os.environ.get("IPYDOCK_FUZZ_EXAMPLES", "300"))
HANG = 20
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a loaded shared machine: hangs are caught by the alarm below instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
    database=None,
)  # fmt: skip

_cases = {"n": 0}


@pytest.fixture(scope="module", autouse=True)
def count_cases() -> Iterator[None]:
    before = _cases["n"]
    yield
    ran = _cases["n"] - before
    print(f"fuzz cases: {ran}")
    record("fuzz cases", ran)


class Hang(Exception):
    pass


@contextlib.contextmanager
def only_own_errors(*also: type[BaseException]) -> Iterator[None]:
    """The case may fail only with an ipydock error (or ``also``), within ``HANG`` seconds."""
    _cases["n"] += 1

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"the case ran longer than {HANG} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG)
    try:
        yield
    except (IPyDockError, *also):
        pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- Dockerfiles ---------------------------------------------------------------------------

KEYWORDS = ["FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
            "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
            "MAINTAINER", "from", "Copy"]  # fmt: skip
PIECES = st.sampled_from(
    ["busybox", "scratch", "AS", "as", "base", "--from=0", "--chown=1:1", "--chmod=755",
     "--platform=linux/amd64", "--mount=type=cache", '["sh", "-c"]', "[", "]", '"', "'", "\\",
     "$X", "${X:-a}", "${X:+b}", "${X#*/}", "${", "}", "<<EOF", "EOF", "=", "a=b", "# c",
     "\t", " ", "\\\n", "80/tcp", "NONE", "--interval=1s", "CMD", "é", "\x00"]
)  # fmt: skip
LINE = st.builds(
    lambda kw, parts: " ".join([kw, *parts]),
    st.sampled_from(KEYWORDS),
    st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=6),
)
DIRECTIVE = st.sampled_from(["# syntax=docker/dockerfile:1", "# escape=`", "# escape=\\",
                             "# escape=x", ""])  # fmt: skip


@FUZZ
@given(DIRECTIVE, st.lists(st.one_of(LINE, st.text(max_size=30)), max_size=12))
def test_dockerfile_parser(directive: str, lines: list[str]) -> None:
    text = "\n".join([directive, *lines]) + "\n"
    with only_own_errors():
        df = parse_dockerfile(text)
        for stage in df.stages:
            assert stage.index >= 0


ENV = st.dictionaries(st.sampled_from(["X", "Y", "PATH", "HOME", "_"]), st.text(max_size=6),
                      max_size=4)  # fmt: skip


@FUZZ
@given(st.lists(st.one_of(PIECES, st.text(max_size=10)), max_size=8).map("".join), ENV,
       st.sampled_from(["\\", "`"]))  # fmt: skip
def test_shell_expansion(word: str, env: dict[str, str], escape: str) -> None:
    with only_own_errors(ExpansionError):
        assert isinstance(expand(word, env, escape), str)
        assert all(isinstance(w, str) for w in words(word, env, escape))


# -- .dockerignore -------------------------------------------------------------------------

PATTERN = st.lists(
    st.sampled_from(["*", "**", "?", "[", "]", "[a-", "!", "/", ".", "..", "a", "b", "\\",
                     "{", "}", "^", "$", "(", ")", "+", "|", " ", "#"]),
    max_size=8,
).map("".join)  # fmt: skip


@FUZZ
@given(st.lists(st.one_of(PATTERN, st.text(max_size=10)), max_size=8),
       st.lists(st.text(min_size=1, max_size=12), max_size=5))  # fmt: skip
def test_dockerignore(patterns: list[str], paths: list[str]) -> None:
    from ipydock.commands.dockerignore import IgnoreRules, read_patterns

    with only_own_errors():
        rules = IgnoreRules(read_patterns("\n".join(patterns)))
        for path in paths:
            assert rules.excluded(path.strip("/") or "x") in (True, False)
            rules.may_include_below(path)


# -- references and filters ----------------------------------------------------------------

REF = st.lists(
    st.sampled_from(["a", "b", "Z", "0", "/", ":", "@", ".", "-", "_", "__", "sha256:",
                     "e" * 64, "localhost", ":5000", "docker.io", "library", "@sha256:"]),
    max_size=10,
).map("".join)  # fmt: skip


@FUZZ
@given(st.one_of(REF, st.text(max_size=40)))
def test_image_references(text: str) -> None:
    with only_own_errors():
        ref = reference.parse(text)
        again = reference.parse(ref.full)
        assert again.full == ref.full  # a parsed name reads back as itself


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(str(tmp_path_factory.mktemp("fuzz") / "store"))
    data = make_docker_archive([layer_tar({"a": b"a"})], tags=["app:1", "other/x:y"],
                               config_extra={"config": {"Labels": {"k": "v"}}})  # fmt: skip
    BundledBackend(store).load(io.BytesIO(data))
    return store


FILTER = st.builds(
    lambda k, sep, v: k + sep + v,
    st.sampled_from(["dangling", "reference", "label", "before", "since", "until", "x", ""]),
    st.sampled_from(["=", "", "=="]),
    st.one_of(REF, st.sampled_from(["true", "false", "1", "k", "k=v", "app:*", "*", "[",
                                    "2026-01-01T00:00:00Z"]), st.text(max_size=10)),
)  # fmt: skip


@FUZZ
@given(st.lists(FILTER, max_size=3), st.booleans())
def test_image_filters(filled_store: Store, filters: list[str], all_: bool) -> None:
    with only_own_errors():
        images.list_images(filled_store, all=all_, filters=filters)


@FUZZ
@given(
    st.sampled_from(
        [
            ["image", "ls"],
            ["container", "ls", "-a"],
            ["volume", "ls"],
            ["network", "ls"],
            ["image", "history", "app:1"],
        ]
    ),
    st.lists(st.sampled_from(["--format", "--filter", "-f", "-q", "--no-trunc"]), max_size=3),
    st.lists(st.one_of(FILTER, st.sampled_from(["json", "table", "{{.ID}}"])), max_size=3),
)
def test_cli_format_and_filters(filled_store: Store, words_: list[str], flags: list[str],
                                values: list[str]) -> None:  # fmt: skip
    from ipydock.cli import main

    argv = ["--root", filled_store.root, "--debug", *words_]
    for flag, value in zip(flags, values + [""] * len(flags), strict=False):
        argv += [flag, value] if flag in ("--format", "--filter", "-f") else [flag]
    out, err = io.StringIO(), io.StringIO()
    with only_own_errors(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)  # --debug: anything but our errors is raised, not printed
        assert code in (0, 1, 2), code


# -- layer tars ----------------------------------------------------------------------------

NAME = st.lists(
    st.sampled_from(["a", "b", "..", ".", "/", "etc", "x" * 120, ".wh.a", ".wh..wh..opq",
                     "é", "\\", " ", "dev", "proc"]),
    min_size=1, max_size=5,
).map("".join)  # fmt: skip
TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
         tarfile.CHRTYPE, b"7", b"x", tarfile.GNUTYPE_SPARSE]  # fmt: skip
PAX = st.dictionaries(
    st.sampled_from(["path", "linkpath", "size", "uid", "gid", "mtime", "SCHILY.xattr.user.a",
                     "SCHILY.xattr.security.capability", "SCHILY.xattr.trusted.overlay.opaque",
                     "LIBARCHIVE.xattr.user.b", "comment", "x"]),
    st.one_of(st.text(max_size=12), st.sampled_from(["-1", "1e99", "99999999999999", "../x"])),
    max_size=3,
)  # fmt: skip
MEMBER = st.fixed_dictionaries({
    "name": NAME, "type": st.sampled_from(TYPES), "link": NAME, "data": st.binary(max_size=64),
    "size": st.one_of(st.none(), st.integers(0, 200)), "mode": st.integers(0, 0o7777),
    "uid": st.integers(0, 70000), "pax": PAX,
})  # fmt: skip


def build_tar(members: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.type, info.linkname, info.mode, info.uid = (
                m["type"],
                m["link"],
                m["mode"],
                m["uid"],
            )
            info.pax_headers = {k: v for k, v in m["pax"].items()}
            data = m["data"] if info.type in (tarfile.REGTYPE, b"7") else b""
            info.size = len(data)
            with contextlib.suppress(ValueError, UnicodeError):
                tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return raw


def tree(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every entry below ``path``: (mode, size, first bytes of a file)."""
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            head = b""
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    head = f.read(64)
            out[os.path.relpath(p, path)] = (st_.st_mode, st_.st_size, head)
    return out


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dir with a bystander tree; each case unpacks into ``sandbox/target``."""
    box = tmp_path_factory.mktemp("fuzz-tar")
    (box / "outside").mkdir()
    (box / "outside" / "secret").write_bytes(b"untouched")
    (box / "a").write_bytes(b"a sibling")
    return box


def unpack_checked(sandbox: Path, raw: bytes, whiteouts: str) -> None:
    before = tree(sandbox)
    target = sandbox / "target"
    target.mkdir()
    try:
        with only_own_errors():
            apply_tar(io.BytesIO(raw), str(target), source="fuzz",
                      whiteouts=whiteouts)  # type: ignore[arg-type]  # fmt: skip
    finally:
        remove_tree(str(target))
    assert tree(sandbox) == before  # nothing written outside the target


@FUZZ
@given(st.lists(MEMBER, max_size=6), st.sampled_from(["overlay", "delete"]))
def test_layer_tar_members(sandbox: Path, members: list[dict[str, Any]], whiteouts: str) -> None:
    unpack_checked(sandbox, build_tar(members), whiteouts)


@FUZZ
@given(st.lists(MEMBER, min_size=1, max_size=3),
       st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 4000))  # fmt: skip
def test_damaged_layer_tars(sandbox: Path, members: list[dict[str, Any]],
                            flips: list[tuple[int, int]], cut: int) -> None:  # fmt: skip
    raw = bytearray(build_tar(members))
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    unpack_checked(sandbox, bytes(raw[: max(cut, 512)]), "overlay")


# -- image load archives -------------------------------------------------------------------

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2**40), st.text(max_size=8),
              st.sampled_from(["../x", "/etc/passwd", "blobs/sha256/" + "e" * 64, "layer.tar",
                               "sha256:" + "e" * 64, "app:1", "config.json"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=12,
)  # fmt: skip
MANIFEST_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "Config": st.one_of(st.sampled_from(["config.json", "../config.json", "/x", "missing"]),
                            JSONISH),
        "RepoTags": st.one_of(st.lists(st.one_of(REF, st.sampled_from(["app:2"]))), JSONISH),
        "Layers": st.one_of(st.lists(st.sampled_from(["l/layer.tar", "../l", "/l", "nope",
                                                      "l"])), JSONISH),
    },
)  # fmt: skip


@FUZZ
@given(
    st.one_of(st.lists(MANIFEST_ENTRY, max_size=2), JSONISH),
    st.one_of(st.none(), JSONISH),
    st.one_of(st.none(), JSONISH),
    st.booleans(),
)
def test_image_load_manifests(filled_store: Store, tmp_path_factory, manifest: Any,
                              index: Any, config: Any, good_config: bool) -> None:  # fmt: skip
    layer = layer_tar({"f": b"f"})
    real_config = {"architecture": "amd64", "os": "linux",
                   "rootfs": {"type": "layers", "diff_ids": []}}  # fmt: skip
    files = {
        "manifest.json": json.dumps(manifest).encode(),
        "l/layer.tar": layer,
        "config.json": json.dumps(real_config if good_config else config).encode(),
    }
    if index is not None:
        files["index.json"] = json.dumps(index).encode()
        files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    with only_own_errors():
        images_before = set(filled_store.index().images)
        BundledBackend(filled_store).load(buf)
        for image_id in set(filled_store.index().images) - images_before:
            images.remove(filled_store, image_id, force=True)
    assert check(filled_store).problems == []


# -- registry answers ----------------------------------------------------------------------


class FakeResponse:
    def __init__(self, body: bytes) -> None:
        self.body, self.status_code = body, 200

    def read(self) -> bytes:
        return self.body

    def iter_bytes(self, n: int = 65536) -> Iterator[bytes]:
        for i in range(0, len(self.body), n):
            yield self.body[i : i + n]

    def close(self) -> None:
        pass


class FakeRegistry:
    """Answers ``pull`` with fuzzed manifests, indexes, configs and blobs."""

    domain = "127.0.0.1:9"

    def __init__(self, manifests: list[tuple[bytes, str]], blob: Callable[[str], bytes]) -> None:
        self.manifests, self.blob = manifests, blob

    def get_manifest(self, name: str, ref: str, shown: str) -> tuple[bytes, str]:
        return self.manifests.pop(0) if self.manifests else (b"{}", "x")

    def open_blob(self, name: str, digest: str, offset: int = 0) -> FakeResponse:
        return FakeResponse(self.blob(digest))


MEDIA = st.sampled_from([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json", "text/html", ""])  # fmt: skip
DESC = st.fixed_dictionaries({}, optional={
    "mediaType": st.one_of(MEDIA, st.sampled_from(
        ["application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar"])),
    "digest": st.one_of(st.sampled_from(["sha256:" + "e" * 64, "sha256:x", "md5:1"]), JSONISH),
    "size": st.one_of(st.integers(-1, 1 << 40), JSONISH),
    "platform": st.one_of(st.fixed_dictionaries({"os": st.sampled_from(["linux", "windows"]),
                          "architecture": st.sampled_from(["amd64", "arm64"])}), JSONISH),
})  # fmt: skip
MANIFEST = st.fixed_dictionaries({}, optional={
    "schemaVersion": st.one_of(st.just(2), JSONISH), "mediaType": MEDIA,
    "config": st.one_of(DESC, JSONISH), "layers": st.one_of(st.lists(DESC, max_size=2), JSONISH),
    "manifests": st.one_of(st.lists(DESC, max_size=2), JSONISH),
})  # fmt: skip


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.one_of(MANIFEST.map(lambda m: json.dumps(m).encode()), st.binary(max_size=40)), MEDIA
        ),
        min_size=1,
        max_size=2,
    ),
    st.one_of(JSONISH.map(lambda c: json.dumps(c).encode()), st.binary(max_size=40)),
)
def test_registry_answers(filled_store: Store, manifests: list[tuple[bytes, str]],
                          blob: bytes) -> None:  # fmt: skip
    from ipydock.engine.registry.pull import pull

    reg = FakeRegistry(list(manifests), lambda digest: blob)
    with only_own_errors():
        pull(filled_store, "127.0.0.1:9/fuzz/img:1", registry=reg)  # type: ignore[arg-type]
    assert check(filled_store).problems == []
