"""``system df`` counts containers' writable layers and volumes, as docker does."""

from __future__ import annotations

from ipydock.engine.containers import RunOptions


def test_df_rows_for_images_containers_and_volumes(engine) -> None:
    engine.create_volume("data")
    engine.run(RunOptions("busybox", ("sh", "-c", "head -c 5000 /dev/zero > /f"),
                          name="writer"))  # fmt: skip
    engine.run(RunOptions("busybox", ("sh", "-c", "head -c 300 /dev/zero > /v/g"),
                          volumes=("data:/v",), auto_remove=True))  # fmt: skip
    rows = {r.type: r for r in engine.disk_usage()}
    assert rows["Images"].total == 1
    containers = rows["Containers"]
    assert (containers.total, containers.active) == (1, 0)
    assert containers.size >= 5000 and containers.reclaimable == containers.size
    volumes = rows["Local Volumes"]
    assert (volumes.total, volumes.active, volumes.size) == (1, 0, 300)
