"""Builder behaviour beyond the golden dumps: reproducibility, cache keys, contexts, progress,
stdin and tarball contexts, and what a failed build leaves (nothing tagged, no leaks)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ipydock.backends import BundledBackend
from ipydock.engine.store import Store
from ipydock.errors import BuildContextError, BuildStepFailed, CopySourceError

pytestmark = pytest.mark.root

APP = """\
FROM busybox
ARG NOTE=n
COPY . /src/
RUN echo "$NOTE" > /note && ls /src > /listing
ENV A=1
CMD ["cat", "/note"]
"""


def _context(tmp_path: Path, dockerfile: str = APP, files: dict | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {"a.txt": "a\n", "sub/b.txt": "b\n"}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def test_reproducible_builds_give_the_same_id_in_two_stores(
    builder, busybox_tgz, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ctx = _context(tmp_path)
    ids = []
    for n in (1, 2):  # two machines: two stores, the base imported on each
        other = BundledBackend(Store(str(tmp_path / f"store-{n}")))
        other.import_image(busybox_tgz, "busybox", changes=['CMD ["sh"]'])
        ids.append(other.build(str(ctx), tags=["repro"]).image_id)
        detail = other.inspect_image("repro")
        assert detail.created is not None and int(detail.created.timestamp()) == 1700000000
        os.utime(ctx / "a.txt", None)  # mtimes after the epoch are clamped to it
    assert len(set(ids)) == 1


def test_reproducible_flag_without_epoch(builder, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    ctx = _context(tmp_path)
    a = builder.build(str(ctx), reproducible=True, no_cache=True)
    b = builder.build(str(ctx), reproducible=True, no_cache=True)
    assert a.image_id == b.image_id


def test_cache_keys_content_and_build_args(builder, tmp_path) -> None:
    ctx = _context(tmp_path)
    base = builder.build(str(ctx))
    os.utime(ctx / "a.txt", (5, 5))  # mtime only: still a hit
    assert builder.build(str(ctx)).image_id == base.image_id
    (ctx / "a.txt").write_text("changed\n")  # content: COPY and what follows rebuild
    changed = builder.build(str(ctx))
    assert changed.image_id != base.image_id and changed.cached == 1  # only ARG hit
    os.chmod(ctx / "a.txt", 0o600)  # mode is part of the key
    assert builder.build(str(ctx)).cached == 1
    with_arg = builder.build(str(ctx), build_args={"NOTE": "other"})
    assert with_arg.cached == 2  # ARG (its text is the default) and COPY; the RUN reruns
    assert builder.build(str(ctx), no_cache=True).cached == 0


def test_progress_events_stream_run_output(builder, tmp_path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo one && echo two\n", {})
    events = []
    builder.build(str(ctx), progress=events.append)
    outputs = [e.text for e in events if e.kind == "output"]
    assert outputs == ["one", "two"]
    steps = [(e.step, e.total, e.instruction, e.line) for e in events if e.kind == "step"]
    assert steps == [(1, 2, "FROM busybox", 1), (2, 2, "RUN echo one && echo two", 2)]
    done = [e for e in events if e.kind == "done"]
    assert done[-1].duration > 0 and done[-1].image_id.startswith("sha256:")


def test_failed_run_reports_exit_code_and_tail(builder, store, tmp_path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN for i in 1 2 3; do echo line$i; done; exit 7\n", {})
    with pytest.raises(BuildStepFailed) as info:
        builder.build(str(ctx), tags=["broken"])
    assert info.value.exit_code == 7 and info.value.line == 2
    assert info.value.last_lines == ["line1", "line2", "line3"]
    assert "docker.io/library/broken:latest" not in store.index().tags


def test_tarball_contexts_and_dockerfile_from_stdin(builder, tmp_path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {"Dockerfile": b"FROM busybox\nCOPY f /f\n", "f": b"from tar\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    tgz = tmp_path / "ctx.tar.gz"
    tgz.write_bytes(buf.getvalue())
    from_file = builder.build(str(tgz), tags=["tarctx"])
    from_stdin = builder.build("-", stdin=io.BytesIO(buf.getvalue()))
    assert from_file.image_id == from_stdin.image_id
    ctx = _context(tmp_path, "unused", {"g": "g\n"})
    df = io.BytesIO(b"FROM busybox\nCOPY g /g\n")
    assert builder.build(str(ctx), dockerfile="-", stdin=df).steps == 2
    only_df = builder.build("-", stdin=io.BytesIO(b"FROM busybox\nENV X=1\n"))
    assert only_df.steps == 2


def test_copy_from_an_empty_context_names_the_line(builder, tmp_path) -> None:
    with pytest.raises(CopySourceError) as info:
        builder.build("-", stdin=io.BytesIO(b"FROM busybox\n\nCOPY x /x\n"))
    assert info.value.line == 3 and info.value.path == "x"


def test_bad_context(builder, tmp_path) -> None:
    with pytest.raises(BuildContextError):
        builder.build(str(tmp_path / "missing"))
    (tmp_path / "ctx").mkdir()
    with pytest.raises(BuildContextError):  # no Dockerfile
        builder.build(str(tmp_path / "ctx"))


def test_intermediate_images_and_dangling_rebuild(builder, store, tmp_path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nENV A=1\nENV B=2\n", {})
    first = builder.build(str(ctx), tags=["app"])
    listed = {i.id for i in builder.images()}
    every = {i.id for i in builder.images(all=True)}
    assert first.image_id in listed and len(every - listed) == 1  # the ENV A step
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\nENV B=3\n")
    second = builder.build(str(ctx), tags=["app"])
    assert second.cached == 1 and second.untagged == [first.image_id]
    dangling = [i.id for i in builder.images(filters=["dangling=true"])]
    assert dangling == [first.image_id]
    rows = builder.history("app")
    assert [r.created_by for r in rows[:2]] == [
        "/bin/sh -c #(nop)  ENV B=3",
        "/bin/sh -c #(nop)  ENV A=1",
    ]
    assert all(r.id != "<missing>" for r in rows)


def test_run_steps_fork_from_the_backends_warm_helper(builder, tmp_path, monkeypatch) -> None:
    """A kernel's backend has a warm fork-server helper; a build's RUN steps use it instead of
    starting one of their own (a Python start per build)."""
    from ipydock.engine.runtime import process

    helper = builder._helper()
    started: list[object] = []
    monkeypatch.setattr(process.ForkServer, "_start_locked",
                        _counting(process.ForkServer._start_locked, started))  # fmt: skip
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo one > /one\nRUN echo two\n")
    builder.build(str(tmp_path), no_cache=True)
    assert started and all(s is helper for s in started)  # only the backend's helper ran them
    assert helper._proc is not None and helper._proc.poll() is None  # and it is still warm
    # a supervisor forked from that helper after it spawned RUN steps starts containers too
    from ipydock.models import RunOptions

    out = builder.run(RunOptions("busybox", ("echo", "after"), network="none"),
                      output=lambda s, t: None)  # fmt: skip
    assert out.exit_code == 0
    builder.remove_container(out.id)


def _counting(method, calls: list):  # noqa: ANN001, ANN202
    def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(self)
        return method(self, *args, **kwargs)

    return wrapper


def _big_context(tmp_path: Path) -> Path:
    """More files than one thread copies (see ``filework``): 3 dirs of 60, an ignored dir
    with one file let back in, a symlink, an ignored log."""
    ctx = tmp_path / "big"
    for d in ("a", "b", "skip"):
        (ctx / d).mkdir(parents=True)
        for i in range(60):
            (ctx / d / f"f{i:02d}").write_text(f"{d}{i}\n" * (i + 1))
    os.chmod(ctx / "a" / "f07", 0o751)
    os.symlink("a/f01", ctx / "link")
    (ctx / "x.log").write_text("ignored\n")
    (ctx / ".dockerignore").write_text("skip\n!skip/f05\n*.log\nDockerfile\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx/\n")
    os.chmod(ctx / "skip", 0o700)  # excluded: the layer shows it as the engine makes it, 0755
    return ctx


def _layer(store: Store, name: str) -> dict[str, tarfile.TarInfo]:
    rec = store.resolve(name)
    top = store.layer_chain(rec)[-1]
    with tarfile.open(fileobj=io.BytesIO(store.blobs.get(top.diff_id))) as tf:
        return {m.name.rstrip("/"): m for m in tf}


def test_a_large_context_is_copied_as_its_packed_form_shows_it(builder, store, tmp_path) -> None:
    ctx = _big_context(tmp_path)
    first = builder.build(str(ctx), tags=["big"])
    entries = _layer(store, "big")
    files = sorted(n for n, m in entries.items() if m.isreg())
    assert files == sorted(
        [f"ctx/{d}/f{i:02d}" for d in ("a", "b") for i in range(60)]
        + ["ctx/skip/f05", "ctx/.dockerignore"]
    )
    assert entries["ctx/a/f07"].mode == 0o751 and entries["ctx/skip"].mode == 0o755
    assert entries["ctx/link"].issym() and entries["ctx/link"].linkname == "a/f01"
    assert all((m.uid, m.gid) == (0, 0) for m in entries.values())
    with tarfile.open(fileobj=io.BytesIO(store.blobs.get(
            store.layer_chain(store.resolve("big"))[-1].diff_id))) as tf:  # fmt: skip
        member = tf.extractfile("ctx/b/f59")
        assert member is not None and member.read() == b"b59\n" * 60
    assert builder.build(str(ctx), tags=["big"]).image_id == first.image_id  # same: a hit
    (ctx / "b" / "f30").write_text("other\n")
    assert builder.build(str(ctx), tags=["big"]).cached == 0  # one byte changed: a miss
    (ctx / "skip" / "f06").write_text("ignored: no change\n")
    assert builder.build(str(ctx), tags=["big"]).cached == 1


@pytest.mark.parametrize("files", [2, 200])
@pytest.mark.parametrize("change", ["content", "symlink", "removed"])
def test_a_file_changed_after_it_was_hashed_fails_the_build(
    builder, store, tmp_path, monkeypatch, files: int, change: str
) -> None:
    """The context is read in place: what is copied must be what was hashed (the cache key)."""
    from ipydock.engine.builder import copyadd

    ctx = _context(tmp_path, "FROM busybox\nCOPY . /src/\n",
                   {f"d/f{i:03d}": f"{i}\n" for i in range(files)})  # fmt: skip
    victim = ctx / "d" / f"f{files - 1:03d}"
    write_copy = copyadd.write_copy

    def meanwhile(*args, **kw):  # noqa: ANN002, ANN003, ANN202 - the user edits the file now
        victim.unlink()
        if change == "content":
            victim.write_text("x\n")  # the same size, other bytes
        elif change == "symlink":
            victim.symlink_to("/etc/passwd")
        return write_copy(*args, **kw)

    monkeypatch.setattr(copyadd, "write_copy", meanwhile)
    with pytest.raises(BuildContextError, match="it changed during the build"):
        builder.build(str(ctx), tags=["changed"])
    assert "docker.io/library/changed:latest" not in store.index().tags
