"""The in-use rules hold whoever opens the store: a plain ``Store`` (no backend) knows the
containers made on it."""

from __future__ import annotations

import pytest

from ipydock.engine.containers import RunOptions
from ipydock.engine.store import Store, images
from ipydock.errors import ImageInUse


def test_a_plain_store_refuses_to_remove_an_image_a_container_uses(backend, busybox, root) -> None:
    cid = backend.create_container(RunOptions("busybox", ("true",)))
    fresh = Store(root)  # opened anew, no backend in sight
    assert fresh.container_use(busybox) == [(cid, False)]
    with pytest.raises(ImageInUse) as err:
        images.remove(fresh, "busybox")
    assert err.value.container_ids == [cid]
    backend.remove_container(cid)
    assert fresh.container_use(busybox) == []
