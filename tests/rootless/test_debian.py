"""A Debian root made by mmdebstrap, imported and built on by an unprivileged user."""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest

from tests.rootless.conftest import NOBODY, as_user

pytestmark = pytest.mark.slow  # mmdebstrap: ~20 s once per session, the import ~5 s


def test_import_of_a_debian_root_skips_its_device_nodes_and_builds_on_it(
    nobody_dir: str, debian_tar: str
) -> None:
    context = os.path.join(nobody_dir, "context")
    os.mkdir(context)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write("FROM debian\nRUN dpkg-query -W -f '${Package}\\n' dpkg > /dpkg && ls /dev\n")
    os.chown(context, NOBODY, NOBODY)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(os.path.join(nobody_dir, "store")), warm=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            backend.import_image(debian_tar, "debian", changes=['CMD ["bash"]'])
        lines: list[str] = []
        backend.build(context, tags=["deb-app"],
                      progress=lambda e: lines.append(e.text or ""))  # fmt: skip
        out: list[str] = []
        opts = RunOptions("deb-app", ("sh", "-c", "cat /etc/debian_version /dpkg; id -un"),
                          auto_remove=True)  # fmt: skip
        code = backend.run(opts, output=lambda _s, text: out.append(text)).exit_code
        from ipydock.errors import IPyDockWarning

        # the engine's own warnings (a ResourceWarning from some earlier test's garbage may
        # be collected inside the block too)
        mine = [str(w.message) for w in caught if issubclass(w.category, IPyDockWarning)]
        return {"warnings": mine, "build": lines,
                "run": (code, "".join(out).split())}  # fmt: skip

    found = as_user(NOBODY, work)
    assert len(found["warnings"]) == 1, found["warnings"]
    (warning,) = found["warnings"]
    assert "rootless mode" in warning and "device node(s)" in warning
    assert "/dev/console" in warning and "/dev/null" in warning
    assert "null" in found["build"]  # the step's /dev is the engine's, with the usual devices
    code, (version, dpkg, user) = found["run"]
    assert code == 0 and version[0].isdigit() and dpkg == "dpkg" and user == "root"


def test_apt_get_install_in_a_build_of_a_user_with_a_range(
    ranged_user: tuple[int, str], debian_tar: str
) -> None:
    """apt-get drops to _apt for downloads: it needs more ids than the user's own."""
    uid, home = ranged_user
    context = os.path.join(home, "apt-context")
    os.mkdir(context)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write("FROM debian\nRUN apt-get update -q && apt-get install -y -q "
                "--no-install-recommends hello\n")  # fmt: skip
    for path in (context, os.path.join(context, "Dockerfile")):
        os.chown(path, uid, uid)

    def work() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store
        from ipydock.models.containers import RunOptions

        backend = BundledBackend(Store(os.path.join(home, "apt-store")), warm=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the device nodes: see the test above
            backend.import_image(debian_tar, "debian", changes=['CMD ["bash"]'])
        lines: list[str] = []
        backend.build(context, tags=["hello"], progress=lambda e: lines.append(e.text or ""))
        out: list[str] = []
        script = "hello; stat -c %U /var/cache/apt/archives/partial /var/lib/apt/lists/partial"
        opts = RunOptions("hello", ("sh", "-c", script), auto_remove=True)
        code = backend.run(opts, output=lambda _s, text: out.append(text)).exit_code
        backend.remove_image("hello")
        backend.remove_image("debian")
        return {"build": lines, "run": (code, "".join(out).splitlines())}

    found = as_user(uid, work)
    assert not [line for line in found["build"] if line.startswith(("W:", "E:"))], found["build"]
    assert any("Setting up hello" in line for line in found["build"])
    assert found["run"] == [0, ["Hello, world!", "_apt", "_apt"]]  # apt's own user kept


#: Three steps of small changes on the ~200 MB Debian base: a new 1 MiB file, deletions and a
#: copied-up small file, a new user and a chown (to 1000: the range's ids).
DISK_STEPS = """\
FROM debian
RUN mkdir /data && head -c 1048576 /dev/urandom > /data/one
RUN rm -rf /usr/share/doc/dpkg /usr/share/man && echo 'alias ll="ls -l"' >> /etc/bash.bashrc
RUN useradd -m -u 1000 app && chown 1000:1000 /data/one
"""


def _du(paths: list[str]) -> int:
    import subprocess

    if not paths:
        return 0
    out = subprocess.run(["du", "-s", "-c", "--block-size=1", *paths], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return int(out.splitlines()[-1].split()[0])


def _build_on_debian(store: str, tar: str, context: str) -> dict[str, Any]:
    """Import the Debian root, build DISK_STEPS; the snapshot dirs of base and steps."""
    from ipydock.backends import BundledBackend
    from ipydock.engine.store import Store

    backend = BundledBackend(Store(store), warm=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the device nodes (rootless)
        backend.import_image(tar, "debian", changes=['CMD ["bash"]'])
    layers = os.path.join(store, "layers")
    base = [os.path.join(layers, n) for n in os.listdir(layers)]
    backend.build(context, tags=["disk"])
    added = [os.path.join(layers, n) for n in os.listdir(layers) if os.path.join(layers, n)
             not in base]  # fmt: skip
    return {"base": base, "added": added, "driver": backend.info()["storage_driver"]}


def test_a_3_step_build_on_debian_adds_only_its_deltas_to_the_disk(
    ranged_user: tuple[int, str], debian_tar: str, tmp_path: Any
) -> None:
    """Measured as root (du of the snapshot dirs, whoever owns their files) for the user's
    build and for the same build in root mode, printed; rootless <= 1.1 x root's disk."""
    uid, home = ranged_user
    context = os.path.join(home, "disk-context")
    os.mkdir(context)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(DISK_STEPS)
    for path in (context, os.path.join(context, "Dockerfile")):
        os.chown(path, uid, uid)
    user_store = os.path.join(home, "disk-store")
    rootless = as_user(uid, lambda: _build_on_debian(user_store, debian_tar, context))
    root = _build_on_debian(str(tmp_path / "root-store"), debian_tar, context)
    sizes = {mode: (_du(found["base"]), _du(found["added"]))
             for mode, found in (("root", root), ("rootless", rootless))}  # fmt: skip
    for mode, (base, added) in sizes.items():
        print(f"{mode}: Debian base {base / 1e6:.1f} MB on disk; 3 steps add {added / 1e6:.2f} MB")
    assert rootless["driver"] == root["driver"] == "overlay"
    assert len(rootless["added"]) == len(root["added"]) == 3
    (_, root_added), (user_base, user_added) = sizes["root"], sizes["rootless"]
    assert user_base > 100e6  # the base is a real root (~200 MB)
    assert user_added < 0.03 * user_base  # deltas: about 1 MB, not copies of the root
    assert user_added <= 1.1 * root_added, sizes

    # the user's store goes with its files of the range's owners
    def remove() -> dict[str, Any]:
        from ipydock.backends import BundledBackend
        from ipydock.engine.store import Store

        backend = BundledBackend(Store(user_store), warm=False)
        backend.remove_image("disk")
        backend.remove_image("debian")
        return {"left": len(os.listdir(os.path.join(user_store, "layers")))}

    assert as_user(uid, remove)["left"] == 0
