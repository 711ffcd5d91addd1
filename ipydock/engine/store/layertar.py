"""Layer tars <-> snapshot directories: the one place that reads and writes layer tar streams.

::

      layer tar (uncompressed stream)              snapshot directory
    +---------------------------+   apply_tar    +----------------------------------------+
    | etc/                      | -------------> | etc/                                   |
    | etc/passwd                |  safe names,   | etc/passwd                             |
    | etc/.wh.shadow            |  owners, modes | etc/shadow  c 0/0   (whiteouts=overlay) |
    |                           |  xattrs, links |             removed (whiteouts=delete)  |
    | var/                      |  dir mtimes    | var/  trusted.overlay.opaque=y         |
    | var/.wh..wh..opq          |  last          |       or emptied of older entries      |
    +---------------------------+ <------------- +----------------------------------------+
                                    write_tar: sorted, PAX, numeric ids, whiteouts back to
                                    .wh. entries, mtimes clamped for reproducible builds

The work is split: ``layerfmt`` (shared names and sizes), ``untar`` (apply_tar), ``mktar``
(write_tar, LayerWriter). This module is the one import the rest of the engine uses.
"""

from ipydock.engine.store.layerfmt import (
    OPAQUE_MARKER,
    OPAQUE_XATTR,
    WHITEOUT_PREFIX,
    ApplyResult,
    SizeCounter,
    diff_size,
    is_overlay_whiteout,
    kept_xattrs,
)
from ipydock.engine.store.mktar import LayerWriter, write_tar
from ipydock.engine.store.untar import apply_tar

__all__ = [
    "OPAQUE_MARKER",
    "OPAQUE_XATTR",
    "WHITEOUT_PREFIX",
    "ApplyResult",
    "LayerWriter",
    "SizeCounter",
    "apply_tar",
    "diff_size",
    "is_overlay_whiteout",
    "kept_xattrs",
    "write_tar",
]
