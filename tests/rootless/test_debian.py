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
