"""The image store: blobs, layers, images and tags under one root.

::

    archive.py (load/save/import) ─┐        images.py (ls/history/rm/prune) ─┐
                                   v                                          v
                                store.py: Store  ── lock.py (flock, one writer)
                                  |        |            \\
                        blobs.py  |   layers.py ──> snapshots.py (overlay | vfs)
                 (sha256, atomic) |        |            \\
                                  |        '──> layertar.py (tar <-> dir, whiteouts, safe)
                                index.py (index.json: images + tags, the commit point)
                                check.py (system check/repair, system df)
                                leases.py (what operations in flight hold) --> gc.py (mark
                                  from index + live leases, sweep the rest; prune, rm, release)
                                shape.py (foreign JSON documents checked before use)
"""

from ipydock.engine.store.store import Store, default_root

__all__ = ["Store", "default_root"]
