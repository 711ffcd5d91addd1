"""The engine's own store inside the build context (IPYDOCK_ROOT in a notebook's folder)."""

from __future__ import annotations

import io

from ipydock.engine.store.layerview import LayerView


def test_store_below_the_context_is_left_out(backend, busybox, store, tmp_path) -> None:
    assert store.root.startswith(str(tmp_path))  # the fixture's store lives in the context
    (tmp_path / "hello.txt").write_text("hi\n")
    dockerfile = "FROM busybox\nCOPY . /ctx/\n"
    result = backend.build(str(tmp_path), dockerfile="-", tags=["ctx"],
                           stdin=io.BytesIO(dockerfile.encode()))  # fmt: skip
    rec = store.resolve(result.image_id)
    root = LayerView([store.layers.snapshot(layer.chain_id) for layer in store.layer_chain(rec)])
    copied = root.listdir("ctx")
    assert "hello.txt" in copied
    assert "store" not in copied
