"""An image's layers from what ``docker save`` writes, for the layer explorer on this engine.

::

    docker save tar:  manifest.json  [{"Config": "<id>.json", "Layers": ["<dir>/layer.tar", …]}]
                      <id>.json      the image config: rootfs.diff_ids, history
                      <dir>/layer.tar  one uncompressed layer tar per layer
        ──> ipydock.layerwalk.walk(layers, history) ──> LayerFiles rows (the bundled engine's)

Docker 25+ writes an OCI layout inside the same tar (``blobs/sha256/…`` named by the manifest);
both are read the same way: through the paths ``manifest.json`` gives.
"""

from __future__ import annotations

import json
import tarfile
from typing import IO, Any

from ipydock.errors import ArchiveError
from ipydock.layerwalk import Layer, walk
from ipydock.models import LayerFiles

__all__ = ["layers_of"]


def layers_of(archive: IO[bytes]) -> list[LayerFiles]:
    """The layers of the one image in ``archive`` (a seekable ``docker save`` tar)."""
    try:
        with tarfile.open(fileobj=archive, mode="r:") as tf:
            manifest = json.loads(_member(tf, "manifest.json").read())
            if len(manifest) != 1:
                raise ArchiveError("docker save", f"{len(manifest)} images where one was asked")
            entry = manifest[0]
            config = json.loads(_member(tf, entry["Config"]).read())
            diff_ids = config.get("rootfs", {}).get("diff_ids") or []
            layers = [
                Layer(diff_id, tf.getmember(path).size, _opener(tf, path))
                for diff_id, path in zip(diff_ids, entry["Layers"], strict=True)
            ]
            return walk(layers, config.get("history") or [])
    except (tarfile.TarError, KeyError, ValueError) as exc:
        raise ArchiveError("docker save", f"not an image archive: {exc}") from exc


def _member(tf: tarfile.TarFile, name: str) -> IO[bytes]:
    f = tf.extractfile(name)
    if f is None:
        raise ArchiveError("docker save", f"{name} is not a file")
    return f


def _opener(tf: tarfile.TarFile, path: str) -> Any:
    return lambda: _member(tf, path)
