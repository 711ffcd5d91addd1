"""The build: stages in order, one step per instruction, progress events, tags at the end.

When: ``Backend.build`` (CLI ``ipydock build``, the ``%%dockerfile`` magic) calls :func:`build`
with an opened :class:`BuildContext`. Stages up to ``--target`` are built in order, as the
classic builder does; each stage starts at its FROM (an image, an earlier stage or scratch), runs
the base image's ONBUILD triggers, then one step per instruction; only the last stage's image is
tagged, and only once every step succeeded (a failed build tags nothing and leaves the steps that
succeeded as cache). The build holds a lease (store/leases.py) on every image it starts from or
makes until its result is tagged: a concurrent prune never takes them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ipydock.commands.dockerignore import large_context_warning
from ipydock.engine.builder import copyadd, runstep
from ipydock.engine.builder.commit import Clock, apply_step
from ipydock.engine.builder.context import BuildContext
from ipydock.engine.builder.convert import parse_dockerfile, typed
from ipydock.engine.builder.dispatch import dispatch, expand
from ipydock.engine.builder.filework import SourceChanged
from ipydock.engine.builder.instructions import (
    Copy,
    Dockerfile,
    From,
    Instruction,
    Run,
    Stage,
    Value,
)
from ipydock.engine.builder.parser import parse
from ipydock.engine.builder.rootview import RootView
from ipydock.engine.builder.shell import ExpansionError
from ipydock.engine.builder.shell import expand as shell_expand
from ipydock.engine.builder.state import (
    DEFAULT_PATH,
    PROXY_ARGS,
    BuildOptions,
    StageState,
    Step,
)
from ipydock.engine.registry import reference
from ipydock.engine.store import Store
from ipydock.engine.store.index import ImageIndex, ImageRecord
from ipydock.engine.store.leases import Lease
from ipydock.errors import (
    BuildContextError,
    BuildError,
    DockerfileError,
    ImageNotFound,
    IPyDockError,
)
from ipydock.models import BuildEvent, BuildResult, TransferEvent

__all__ = ["Progress", "build"]

Progress = Callable[[BuildEvent], None]


def build(
    store: Store,
    context: BuildContext,
    options: BuildOptions,
    progress: Progress | None = None,
    forkserver: Any = None,
) -> BuildResult:
    """``forkserver``: the caller's warm helper for the RUN steps (a kernel's backend has one);
    without it the build starts its own at the first RUN that misses the cache."""
    emit = progress or (lambda event: None)
    df = parse_dockerfile(context.dockerfile)
    target = df.stage(options.target)
    warning = large_context_warning(context.size)
    emit(BuildEvent("context", size=context.size, text=warning))
    with store.lease() as lease:
        builder = _Builder(store, context, options, df, emit, forkserver, lease)
        try:
            state = builder.run(target)
        finally:
            builder.close()
        tags, untagged = _tag(store, state.image_id, options.tags)
    unused = sorted(set(options.build_args) - builder.consumed - PROXY_ARGS)
    if unused:
        emit(BuildEvent("warning", text=f"One or more build-args {unused} were not consumed"))
    emit(BuildEvent("built", image_id=state.image_id))
    for name in tags:
        emit(BuildEvent("tagged", image_id=state.image_id, text=name))
    return BuildResult(state.image_id, tags, builder.step, builder.cached, untagged)


class _Builder:
    def __init__(
        self,
        store: Store,
        context: BuildContext,
        options: BuildOptions,
        df: Dockerfile,
        emit: Callable[[BuildEvent], None],
        forkserver: Any,
        lease: Lease,
    ) -> None:
        self.store, self.context, self.options, self.df, self.emit = (
            store,
            context,
            options,
            df,
            emit,
        )
        self.lease = lease
        self.done: dict[int, StageState] = {}
        self.step = self.cached = 0
        self._index: ImageIndex | None = None  # the store as this build last read it
        self.total = 0
        self.consumed: set[str] = set()
        self.runtime: Any = None
        self.forkserver = forkserver  # the caller's: used, never closed here
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch and epoch.isdigit():
            self.clock = Clock(int(epoch))
        else:
            self.clock = Clock(0 if options.reproducible else None)
        self.meta = self._meta_args()

    def close(self) -> None:
        if self.runtime is not None and self.forkserver is None:
            self.runtime.close()

    def _meta_args(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for arg in self.df.meta_args:
            for key, default in arg.pairs:
                env = {k: v for k, v in out.items() if v is not None}
                value = _expand(arg, default, env) if default is not None else None
                given = self.options.build_args.get(key)
                out[key] = given if given is not None else value
                self.consumed.add(key)
        return out

    # -- stages --------------------------------------------------------------------------

    def run(self, target: Stage) -> StageState:
        stages = self.df.stages[: target.index + 1]
        self.total = sum(1 + len(s.instructions) for s in stages)
        state = None
        for stage in stages:
            state = self._stage(stage)
            self.done[stage.index] = state
        assert state is not None
        return state

    def _stage(self, stage: Stage) -> StageState:
        state = StageState(stage.name, stage.index, self.df.directives)
        state.given_args, state.meta_args = dict(self.options.build_args), dict(self.meta)
        self._begin(stage.source)
        self._from(state, stage.source)
        _default_path(state)
        self._triggers(state, stage.source)
        self.emit(
            BuildEvent("done", self.step, self.total, image_id=state.image_id, stage=stage.name)
        )
        for instr in stage.instructions:
            self._step(state, instr)
        return state

    def _begin(self, instr: Instruction) -> float:
        self.step += 1
        self.emit(
            BuildEvent("step", self.step, self.total, instr.title, instr.line, stage=instr.kind)
        )
        return time.monotonic()

    def _from(self, state: StageState, instr: From) -> None:
        env = {k: v for k, v in self.meta.items() if v is not None}
        name = _expand(instr, instr.image, env)
        if instr.platform and _expand(instr, instr.platform, env) not in _host_platforms():
            raise DockerfileError(
                instr.line, instr.text, f"platform {instr.platform} is not this host's"
            )
        for done in self.done.values():
            if done.name and done.name == name.lower():
                state.image_id, state.layers = done.image_id, list(done.layers)
                state.config = done.snapshot()
                return
        if name == "scratch":
            state.config = {"architecture": _arch(), "os": "linux", "config": {}}
            state.config["rootfs"] = {"type": "layers", "diff_ids": []}
            return
        try:
            try:
                rec = self._hold(name)
            except ImageNotFound:
                rec = self._hold(self._pull(instr, name))
            state.image_id, state.layers = rec.id, self.store.layer_chain(rec)
            state.config = self.store.config(rec)
        except IPyDockError as exc:
            raise BuildError(instr.line, instr.text, f"{exc}") from exc
        for key in ("container", "container_config", "docker_version"):
            state.config.pop(key, None)

    def _hold(self, name: str) -> ImageRecord:
        """The image called ``name``, held by the build's lease from now on."""
        with self.store.lock:
            rec = self.store.resolve(name)
            self.lease.hold_image(rec)
        return rec

    def _pull(self, instr: From, name: str) -> str:
        """A base image that is not here is pulled, as docker's builder does; the pull's lines
        are the step's output."""
        from ipydock.engine.registry.pull import pull
        from ipydock.engine.registry.transport import offline

        ref = reference.try_parse(name)
        if ref is None or offline(ref.domain):
            raise ImageNotFound(name)
        last: dict[str, str] = {}

        def show(ev: TransferEvent) -> None:
            if ev.id and (last.get(ev.id) == ev.status or ev.status == "Downloading"):
                return
            last[ev.id] = ev.status
            text = f"{ev.id}: {ev.status}" if ev.id else ev.text
            self.emit(BuildEvent("output", self.step, self.total, line=instr.line, text=text))

        return pull(self.store, name, progress=show).id

    def _triggers(self, state: StageState, instr: From) -> None:
        """The base image's ONBUILD triggers run right after FROM; the child has none."""
        triggers = list(state.container.get("OnBuild") or [])
        state.container["OnBuild"] = None
        for text in triggers:
            _, nodes = parse(text + "\n")
            for node in nodes:
                trigger = typed(node, state.escape)
                self._dispatch(state, trigger, instr.line)

    # -- steps ---------------------------------------------------------------------------

    def _step(self, state: StageState, instr: Instruction) -> None:
        started = self._begin(instr)
        try:
            image_id, cached = self._dispatch(state, instr, instr.line)
        except BaseException as exc:
            self.emit(
                BuildEvent("failed", self.step, self.total, instr.title, instr.line, text=str(exc))
            )
            raise
        if cached:
            self.cached += 1
            self.emit(
                BuildEvent("cached", self.step, self.total, instr.title, instr.line, image_id)
            )
        took = time.monotonic() - started
        self.emit(
            BuildEvent(
                "done", self.step, self.total, instr.title, instr.line, image_id, duration=took
            )
        )

    def _dispatch(self, state: StageState, instr: Instruction, line: int) -> tuple[str, bool]:
        if instr.kind == "ARG":
            self.consumed.update(k for k, _ in instr.pairs)  # type: ignore[attr-defined]
        if isinstance(instr, Run):
            step = self._run(state, instr)
        elif isinstance(instr, Copy):
            step = self._copy(state, instr)
        elif isinstance(instr, Value) and instr.kind == "WORKDIR":
            step = self._workdir(state, instr)
        else:
            step = dispatch(state, instr)
        if self._index is None:
            self._index = self.store.index()
        image_id, cached = apply_step(self.store, state, step, no_cache=self.options.no_cache,
                                      clock=self.clock, lease=self.lease,
                                      index=self._index)  # fmt: skip
        if not cached:
            self._index = None  # this build wrote: a later step may hit what it made
        return image_id, cached

    def _lower(self, state: StageState) -> list[str]:
        snaps = [self.store.layers.snapshot(layer.chain_id) for layer in state.layers]
        return self.store.layers.driver.lower_dirs(snaps)

    def _run(self, state: StageState, instr: Run) -> Step:
        argv, cmd = runstep.command_of(state, instr)

        def make(staging: str) -> bool:  # a cache miss: only now is the runtime needed
            if self.runtime is None:
                from ipydock.engine.runtime import Runtime

                runstep.ensure_can_run(instr)
                self.runtime = Runtime(self.forkserver, cgroup_parent=runstep.BUILD_CGROUP_PARENT)
            ctx = runstep.RunContext(
                self.runtime,
                self._lower(state),
                self.store.layers.driver.name,
                self.store.tmp_dir,
                lambda text: self.emit(
                    BuildEvent("output", self.step, self.total, line=instr.line, text=text)
                ),
                ulimits=self.options.ulimits,
                network=self.options.network,
                store_root=self.store.root,
            )
            runstep.run_command(state, instr, argv, ctx, staging)
            return True

        return Step(cmd, make_layer=make)

    def _copy(self, state: StageState, instr: Copy) -> Step:
        dst = RootView(self._lower(state))
        src, from_context = self._source(state, instr)

        sources, inline = _heredoc_sources(state, instr)

        plan = copyadd.plan_copy(
            src,
            dst,
            [expand(state, instr, s) for s in sources],
            expand(state, instr, instr.dest),
            workdir=state.container.get("WorkingDir") or "/",
            add=instr.add,
            chown=expand(state, instr, instr.chown),
            chmod=instr.chmod,
            line=instr.line,
            text=instr.text,
            from_context=from_context,
            inline=inline,
        )

        def make(staging: str) -> bool:
            try:
                return copyadd.write_copy(plan, dst, staging)
            except SourceChanged as exc:  # read in place: a file changed since it was hashed
                where = (self.context.source or exc.path) if from_context else exc.path
                raise BuildContextError(
                    where, f"it changed during the build ({instr.title})"
                ) from None

        # Docker 20.10 writes the --chown flag glued to the hash: "COPY --chown=1:1file:..."
        chown = f"--chown={expand(state, instr, instr.chown)}" if instr.chown else ""
        dest = expand(state, instr, instr.dest)
        comment = f"{instr.kind} {chown}{plan.hash_kind}:{plan.digest} in {dest} "
        return Step([*state.shell, "#(nop) " + comment], make_layer=make)

    def _source(self, state: StageState, instr: Copy) -> tuple[RootView, bool]:
        if not instr.from_:
            return self.context.view(), True
        name = expand(state, instr, instr.from_).lower()
        for done in self.done.values():
            if name in (done.name, str(done.index)):
                return RootView(self._lower(done)), False
        if name.isdigit():
            raise DockerfileError(
                instr.line,
                instr.text,
                f"invalid from flag value {name}: refers to a stage not built yet",
            )
        try:
            rec = self._hold(name)
            other = StageState("", -1, self.df.directives, layers=self.store.layer_chain(rec))
        except IPyDockError as exc:
            raise BuildError(instr.line, instr.text, f"--from={name}: {exc}") from exc
        return RootView(self._lower(other)), False

    def _workdir(self, state: StageState, instr: Value) -> Step:
        value = expand(state, instr, instr.value)
        current = state.container.get("WorkingDir") or "/"
        path = os.path.normpath(os.path.join(current, value))
        state.container["WorkingDir"] = path
        view = RootView(self._lower(state))
        return Step(
            [*state.shell, f"#(nop) WORKDIR {path}"],
            make_layer=lambda staging: copyadd.make_dirs(view, path, staging),
        )


def _expand(instr: Instruction, word: str, env: dict[str, str]) -> str:
    try:
        return shell_expand(word, env)
    except ExpansionError as exc:
        raise DockerfileError(instr.line, instr.text, str(exc)) from None


def _heredoc_sources(
    state: StageState, instr: Copy
) -> tuple[list[str], tuple[tuple[str, bytes], ...]]:
    """Split COPY/ADD sources into paths and heredocs (``<<EOF``, ``<<-EOF``, ``<<"EOF"``):
    ``(name, content)``, variables expanded in unquoted ones (quotes in the text are kept)."""
    bodies = {h.name: h for h in instr.heredocs}
    paths: list[str] = []
    inline: list[tuple[str, bytes]] = []
    for src in instr.sources:
        name = src[2:].lstrip("-").strip("\"'") if src.startswith("<<") else ""
        doc = bodies.get(name)
        if doc is None:
            paths.append(src)
            continue
        text = doc.content
        if doc.expand:
            esc = state.escape
            literal = text.replace(esc, esc + esc).replace('"', esc + '"').replace("'", esc + "'")
            text = expand(state, instr, literal)
        inline.append((name, text.encode("utf-8", "surrogateescape")))
    return paths, tuple(inline)


def _default_path(state: StageState) -> None:
    """Docker's classic builder adds the default PATH to a stage's Env when it has none."""
    env = list(state.container.get("Env") or [])
    if not any(item.startswith("PATH=") for item in env):
        state.container["Env"] = [f"PATH={DEFAULT_PATH}", *env]


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _host_platforms() -> tuple[str, ...]:
    return (f"linux/{_arch()}", "linux", _arch())


def _tag(store: Store, image_id: str, names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Name the result; returns the names and the images the names were taken from."""
    full = [reference.parse(n).with_default_tag().full for n in names]
    if not full:
        return [], []
    untagged = []
    with store.lock:
        index = store.index()
        if image_id not in index.images:  # removed by name meanwhile (`image rm ID`)
            raise ImageNotFound(image_id[7:19])
        if any(index.tags.get(name) != image_id for name in full):  # a cached rebuild: as is
            for name in full:
                before = index.set_tag(name, image_id)
                if before and before not in untagged:
                    untagged.append(before)
            index.save()
    return [reference.parse(n).familiar for n in full], untagged
