"""Image commands on the store: ls, history, inspect, tag, rm and prune, with Docker's rules.

::

    ls       index.json only (one row per tag; intermediates hidden unless -a)
    history  config.history, newest first; IDs walk the local parent chain, then <missing>
    rm       untag by name; delete when the last name goes; refuse on children / containers /
             several repositories (by ID, without -f); delete the parent chain it leaves bare
    prune    dangling heads (untagged, no children), or with -a every image no container uses,
             then a full collection (gc.py): expired leases, orphan blobs and layers

Images, blobs and layers held by a lease (an operation in flight, leases.py) are never pruned
nor collected: ``rm`` unnames such an image all the same (the user asked), its data goes when
the lease is released.

The rules follow Docker Engine 20.10's daemon/images (image_delete.go, images.go, image_prune.go).
Functions that change the store take ``store.lock`` themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ipydock.engine.registry import reference
from ipydock.engine.store import gc
from ipydock.engine.store.index import ImageIndex, ImageRecord, parse_time
from ipydock.engine.store.leases import read_leases
from ipydock.engine.store.store import Store
from ipydock.errors import (
    ImageHasChildren,
    ImageInUse,
    ImageMultiplyReferenced,
    UsageError,
)
from ipydock.models import HistoryRow, ImageDetail, ImageInfo, PruneResult, RemoveEvent

__all__ = [
    "history",
    "inspect",
    "list_images",
    "prune",
    "remove",
    "tag",
]

LIST_FILTERS = ("dangling", "reference", "label", "before", "since")


# -- ls --------------------------------------------------------------------------------------


def list_images(store: Store, *, all: bool = False, filters: Iterable[str] = ()) -> list[ImageInfo]:
    """``image ls``: newest first, one row per tag, ``<none>`` for untagged images."""
    flt = _parse_filters(filters, LIST_FILTERS)
    index = store.index()
    dangling = _bool_filter(flt, "dangling")
    with_children = index.has_children()
    rows: list[ImageInfo] = []
    for rec in _filtered(store, index, flt):
        tags = rec.tags
        if "reference" in flt:
            tags = [t for t in tags if any(_ref_match(p, t) for p in flt["reference"])]
            if not tags:
                continue
        if not tags and rec.repo_digests:  # pulled by digest: named, so not dangling
            if not dangling:
                rows += _digest_rows(rec)
            continue
        if not tags:
            if rec.tags or not (all or rec.id not in with_children) or dangling is False:
                continue
            rows.append(ImageInfo("<none>", "<none>", rec.id, rec.created, rec.size))
            continue
        if dangling:
            continue
        for full in sorted(tags):
            repository, tag = reference.familiar_parts(full)
            digest = _repo_digest(rec, full)
            rows.append(ImageInfo(repository, tag, rec.id, rec.created, rec.size, digest))
    rows.sort(key=lambda r: r.created.timestamp() if r.created else 0, reverse=True)
    return rows


def _digest_rows(rec: ImageRecord) -> list[ImageInfo]:
    """``REPO <none>`` rows (with their digest) of an image known only by digests."""
    rows = []
    for rd in sorted(rec.repo_digests):
        repo, _, digest = rd.partition("@")
        shown = reference.parse(repo).familiar_repository
        rows.append(ImageInfo(shown, "<none>", rec.id, rec.created, rec.size, digest))
    return rows


def _repo_digest(rec: ImageRecord, full: str) -> str:
    """The digest a registry knows this tag's repository by (``images --digests``)."""
    if not rec.repo_digests:
        return "<none>"
    repository = full.rsplit(":", 1)[0] if "/" not in full.rsplit(":", 1)[-1] else full
    for rd in rec.repo_digests:
        repo, _, digest = rd.partition("@")
        if repo == repository:
            return digest
    return "<none>"


def _filtered(store: Store, index: ImageIndex, flt: dict[str, list[str]]) -> list[ImageRecord]:
    recs = list(index.images.values())
    for key, keep in (("before", lambda c, t: c < t), ("since", lambda c, t: c > t)):
        for name in flt.get(key, []):
            pivot = store.resolve(name, index).created
            recs = [r for r in recs if r.created and pivot and keep(r.created, pivot)]
    if "label" in flt:
        recs = [r for r in recs if _labels_match(store.config(r), flt["label"])]
    return recs


def _parse_filters(filters: Iterable[str], allowed: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise UsageError(
                f"invalid filter {item!r}: use KEY=VALUE with KEY one of {', '.join(allowed)}"
            )
        out.setdefault(key, []).append(value)
    return out


def _bool_filter(flt: dict[str, list[str]], key: str) -> bool | None:
    if key not in flt:
        return None
    value = flt[key][-1].lower()
    if value not in ("true", "false", "1", "0"):
        raise UsageError(f"invalid filter '{key}={value}': use {key}=true or {key}=false")
    return value in ("true", "1")


def _ref_match(pattern: str, full: str) -> bool:
    """Docker's FamiliarMatch: the pattern against ``repo:tag``, then against ``repo``."""
    ref = reference.parse(full)
    rx = re.compile(
        "^"
        + "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern)
        + "$"
    )
    return bool(rx.match(ref.familiar) or rx.match(ref.familiar_repository))


def _labels_match(config: dict, wanted: list[str]) -> bool:
    labels = (config.get("config") or {}).get("Labels") or {}
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


# -- history and inspect ---------------------------------------------------------------------


def history(store: Store, name: str) -> list[HistoryRow]:
    """One row per step, newest first; sizes are the bytes each step's layer added."""
    index = store.index()
    rec = store.resolve(name, index)
    config = store.config(rec)
    layers = iter(store.layer_chain(rec))
    steps = []
    for h in config.get("history") or []:
        empty = bool(h.get("empty_layer"))
        layer = None if empty else next(layers, None)  # images from elsewhere may miscount
        size = layer.size if layer else 0
        steps.append((h, empty, size))
    steps.reverse()
    rows: list[HistoryRow] = []
    chain: ImageRecord | None = rec
    for h, empty, size in steps:
        if chain is not None:
            image_id = chain.id
            tags = tuple(reference.parse(t).familiar for t in sorted(chain.tags))
            chain = index.images.get(chain.parent) if chain.parent else None
        else:
            image_id, tags = "<missing>", ()
        rows.append(
            HistoryRow(
                id=image_id,
                created=parse_time(h.get("created")),
                created_by=h.get("created_by", ""),
                size=size,
                comment=h.get("comment", ""),
                empty_layer=empty,
                tags=tags,
            )
        )
    return rows


def inspect(store: Store, name: str) -> ImageDetail:
    rec = store.resolve(name)
    config = store.config(rec)
    return ImageDetail(
        id=rec.id,
        repo_tags=[reference.parse(t).familiar for t in sorted(rec.tags)],
        repo_digests=[reference.parse(d).familiar for d in rec.repo_digests],
        parent=rec.parent,
        created=rec.created,
        size=rec.size,
        architecture=config.get("architecture", ""),
        os=config.get("os", ""),
        author=config.get("author", ""),
        comment=_comment(config),
        config=config.get("config") or {},
        rootfs=config.get("rootfs") or {},
        history=config.get("history") or [],
        manifest_digest=rec.manifest,
    )


def _comment(config: dict) -> str:
    hist = config.get("history") or []
    return config.get("comment") or (hist[-1].get("comment", "") if hist else "")


# -- tag ---------------------------------------------------------------------------------------


def tag(store: Store, source: str, target: str) -> str:
    """Give ``source`` the name ``target`` (``busybox`` means ``busybox:latest``)."""
    ref = reference.parse(target)
    if ref.digest:
        raise UsageError(f"cannot tag with a digest reference {target!r}: use NAME[:TAG]")
    full = ref.with_default_tag().full
    with store.lock:
        index = store.index()
        rec = store.resolve(source, index)
        index.set_tag(full, rec.id)
        index.save()
    return rec.id


# -- rm ----------------------------------------------------------------------------------------


def remove(store: Store, name: str, *, force: bool = False) -> list[RemoveEvent]:
    """``image rm``: untag, and delete the image (and its bare parents) with its last name."""
    with store.lock:
        index = store.index()
        rec = store.resolve(name, index)
        events: list[RemoveEvent] = []
        quiet = False
        ref = None if _is_id_prefix(rec.id, name) else reference.parse(name)
        if ref is not None and ref.digest and f"{ref.repository}@{ref.digest}" in rec.repo_digests:
            # A digest reference, as a pull records it: untag it like a tag (docker does).
            rec.repo_digests.remove(f"{ref.repository}@{ref.digest}")
            events.append(RemoveEvent("untagged", ref.familiar))
            if rec.tags or rec.repo_digests:
                index.save()
                return events
            quiet = True
        elif not _is_id_prefix(rec.id, name) and not reference.parse(name).digest:
            # A name was given: untag it; the image goes only with its last name.
            users = store.container_use(rec.id)
            if users and len(rec.tags) == 1 and not force:
                raise ImageInUse(rec.id, [c for c, _ in users], running=any(r for _, r in users))
            full = reference.parse(name).with_default_tag().full
            index.remove_tag(full)
            events.append(RemoveEvent("untagged", reference.parse(full).familiar))
            events += _drop_repo_digests(rec, reference.parse(full).repository)
            if rec.tags:
                index.save()
                return events
            # Docker deletes "quietly" now: an image that still has children or containers
            # simply stays, untagged.
            quiet = True
        elif len(rec.tags) > 1 and not force:
            raise ImageMultiplyReferenced(rec.id, [reference.parse(t).familiar for t in rec.tags])
        try:
            doomed = _delete_chain(store, index, rec, force=force, events=events)
        except (ImageHasChildren, ImageInUse):
            if not quiet:
                raise
            doomed = []
        index.save()
        _collect(store, index, doomed, events)
        return events


def _drop_repo_digests(rec: ImageRecord, repository: str) -> list[RemoveEvent]:
    """The last tag of a repository went: its digest references go too, as in docker."""
    if any(t.rsplit(":", 1)[0] == repository for t in rec.tags):
        return []
    gone = [d for d in rec.repo_digests if d.partition("@")[0] == repository]
    for d in gone:
        rec.repo_digests.remove(d)
    return [RemoveEvent("untagged", reference.parse(d).familiar) for d in gone]


def _is_id_prefix(image_id: str, name: str) -> bool:
    """Docker's isImageIDPrefix: ``name`` is a prefix of the ID, with or without sha256:."""
    return image_id.startswith(name) or image_id[7:].startswith(name)


def _check_conflicts(store: Store, index: ImageIndex, rec: ImageRecord, *, soft: bool) -> None:
    children = index.children(rec.id)
    if children:
        raise ImageHasChildren(rec.id, children)
    users = store.container_use(rec.id)
    running = [cid for cid, is_running in users if is_running]
    if running:
        raise ImageInUse(rec.id, running, running=True)
    if soft and users:
        raise ImageInUse(rec.id, [cid for cid, _ in users], running=False)


def _delete_chain(
    store: Store, index: ImageIndex, rec: ImageRecord, *, force: bool, events: list[RemoveEvent],
    leased: set[str] | None = None,
) -> list[ImageRecord]:  # fmt: skip
    """Remove ``rec`` from the index, then each parent left untagged and childless (and not
    held by a lease: a build in flight stands on it)."""
    if leased is None:
        leased = read_leases(store.root).images
    _check_conflicts(store, index, rec, soft=not force)
    doomed = []
    while True:
        for t in [*sorted(rec.tags), *rec.repo_digests]:
            events.append(RemoveEvent("untagged", reference.parse(t).familiar))
        index.remove_image(rec.id)
        events.append(RemoveEvent("deleted", rec.id))
        doomed.append(rec)
        parent = index.images.get(rec.parent) if rec.parent else None
        if parent is None or parent.tags or parent.repo_digests or index.children(parent.id):
            return doomed
        if parent.id in leased:
            return doomed
        if store.container_use(parent.id):
            return doomed
        rec = parent


def _collect(
    store: Store, index: ImageIndex, doomed: list[ImageRecord], events: list[RemoveEvent]
) -> int:
    """Remove blobs and layers only the doomed images used (and no lease holds); return the
    bytes freed."""
    blobs = [d for rec in doomed for d in (rec.id, rec.manifest)]
    removed, freed = gc.collect(
        store, blobs=blobs, tops=[r.top_layer for r in doomed if r.top_layer], index=index
    )
    events.extend(RemoveEvent("deleted", chain) for chain in removed)
    return freed


# -- prune -------------------------------------------------------------------------------------


def prune(store: Store, *, all: bool = False, filters: Iterable[str] = ()) -> PruneResult:
    """Remove dangling images, or with ``all`` every image no container uses."""
    flt = _parse_filters(filters, ("label", "until"))
    with store.lock:
        index = store.index()
        with_children = index.has_children()
        events: list[RemoveEvent] = []
        doomed: list[ImageRecord] = []
        leased = read_leases(store.root).images
        skip = with_children | leased
        heads = [r for r in index.images.values() if r.id not in skip]
        for rec in heads:
            if (rec.tags or rec.repo_digests) and not all:
                continue
            if "label" in flt and not _labels_match(store.config(rec), flt["label"]):
                continue
            if "until" in flt and not _older_than(rec, flt["until"][-1]):
                continue
            if store.container_use(rec.id):
                continue
            doomed += _delete_chain(store, index, rec, force=False, events=events, leased=leased)
        index.save()
        freed = _collect(store, index, doomed, events)
        # Then what crashed operations left: expired leases, orphans, their temp entries.
        removed, more = gc.collect(store, full=True, index=index)
        events.extend(RemoveEvent("deleted", chain) for chain in removed)
        return PruneResult(events, freed + more)


def _older_than(rec: ImageRecord, until: str) -> bool:
    when = parse_time(until)
    if when is None:
        raise UsageError(f"invalid until filter {until!r}: use an RFC 3339 time")
    return rec.created is not None and rec.created < when
