"""Every teaching notebook of example-notebooks/, executed top to bottom in a real kernel
(ipykernel through nbclient) as a user would run it, on the test's own store; key outputs
checked. The two Debian notebooks share one mmdebstrap root per run (IPYDOCK_DEBIAN_TARBALL,
as a reader may set it too) and are slow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import nbformat
import pytest

from tests.conftest import require
from tests.notebook.test_kernel import execute as run_notebook

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "example-notebooks")
PACKAGES = "python3-pandas,python3-distributed"


def execute(name: str, root: str, cwd: str, **env: str) -> nbformat.NotebookNode:
    return run_notebook(os.path.join(NOTEBOOKS, f"{name}.ipynb"), root, cwd, **env)


def work(tmp_path) -> str:  # noqa: ANN001 - a Path
    """The notebook's folder (its build context), apart from the store in tmp_path/store."""
    (tmp_path / "work").mkdir()
    return str(tmp_path / "work")


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """Errors outside the cells tagged ``raises-exception``, and anything IPython printed on
    stderr as a UsageError or a traceback (a magic's usage error is not an error output)."""
    found = []
    for cell in nb.cells:
        tagged = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        for o in cell.get("outputs", []):
            if o.output_type == "error" and not tagged:
                found.append(f"{cell.source[:60]!r}: {o.ename}: {o.evalue}")
            stderr = o.output_type == "stream" and o.name == "stderr"
            if stderr and ("UsageError" in o.text or "Traceback" in o.text):
                found.append(f"{cell.source[:60]!r}: {o.text}")
    return found


def text(nb: nbformat.NotebookNode, start: str) -> str:
    """Everything the one code cell starting with ``start`` showed, as text (and html)."""
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(start)]
    parts = []
    for o in cell.outputs:
        parts.append(o.get("text", "") or o.get("evalue", ""))
        data = o.get("data", {})
        parts += [
            data.get("text/plain", ""),
            data.get("text/html", ""),
            data.get("image/svg+xml", ""),
        ]
    return "\n".join(parts)


@pytest.fixture
def clean(root: str) -> Iterator[None]:
    """Containers need a mode that runs them (root in CI); none is left when the notebook ends."""
    require(os.geteuid() == 0, "these notebooks run containers: root here (tests/rootless: users)")
    yield
    from tests.containers.conftest import settled_processes_using

    assert not os.listdir(os.path.join(root, "containers"))
    assert settled_processes_using(root) == []


pytestmark = pytest.mark.usefixtures("busybox_tgz", "clean")  # busybox-static is installed


def test_containers_vs_vms(root, tmp_path) -> None:
    nb = execute("containers-vs-vms", root, work(tmp_path))
    assert problems(nb) == []
    assert "Mode root" in text(nb, "from ipydock import dock")
    assert re.search(r"\n\s+1 root\s+sleep 600", text(nb, "%container exec not-a-vm ps"))
    ns = text(nb, "import os\nimport pandas")
    for kind in ("pid", "mnt", "uts", "ipc", "net"):
        assert re.search(rf"\n{kind}\s+{kind}:\[\d+\]\s+{kind}:\[\d+\]\s+False", ns), ns
    assert "container  inside" in text(nb, "inside = ")
    taught = text(nb, "%ipydock explain on")
    assert "in its own pid, mount, uts, ipc and network namespaces" in taught
    assert os.listdir(tmp_path / "work") == []  # the tarball went with the cell that used it


def test_from_scratch(root, tmp_path) -> None:
    nb = execute("from-scratch", root, work(tmp_path))
    assert problems(nb) == []
    assert "ADD file:" in text(nb, "%%dockerfile -t mini")
    assert "'diff_ids': ['sha256:" in text(nb, "details = %image inspect mini")
    assert text(nb, "%container run --rm mini ls /").split()[:3] == ["bin", "dev", "etc"]


def test_dangling_images_appear_and_go(root, tmp_path) -> None:
    nb = execute("dangling-images", root, work(tmp_path))
    assert problems(nb) == []
    listed = text(nb, "dangling = %image ls --filter dangling=true")
    assert "1 dangling image" in listed and "&lt;none&gt;" in listed
    assert text(nb, "first in set(").strip().startswith("True")
    assert "Total reclaimed space" in text(nb, "%image prune -f")
    (after,) = [c for c in nb.cells if c.source == "%image ls --filter dangling=true"]
    assert "No images." in after.outputs[0].data["text/html"]


def test_build_context_and_dockerignore(root, tmp_path) -> None:
    nb = execute("build-context", root, work(tmp_path))
    assert problems(nb) == []
    copied = text(nb, "explorer = %image files site")
    assert "site/index.html" in copied and "secret" not in copied and "node_modules" not in copied
    assert "forbidden path outside the build context" in text(nb, "%%dockerfile -t escape")
    assert "<h1>hello</h1>" in text(nb, "%container run --rm site-from-tar")


def test_untag_vs_delete_refusals_as_data(root, tmp_path) -> None:
    nb = execute("untag-vs-delete", root, work(tmp_path))
    assert problems(nb) == []
    assert "untagged" in text(nb, "%image rm class/busybox:2") and "deleted" not in text(
        nb, "%image rm class/busybox:2"
    )
    refusals = text(nb, "import pandas as pd\nfrom ipydock import dock, errors")
    for refusal in ("ImageMultiplyReferenced", "ImageHasChildren", "ImageInUse"):
        assert refusal in refusals
    assert "deleted" in text(nb, "%image rm busybox")


def test_writable_layer_diff_and_commit(root, tmp_path) -> None:
    nb = execute("writable-layer", root, work(tmp_path))
    assert problems(nb) == []
    diff = text(nb, "%container diff scratchpad")
    assert re.search(r"A\s+/root/note.txt", diff) and re.search(r"D\s+/etc/group", diff)
    assert "group" in text(nb, "%container run --rm busybox ls /etc")
    assert text(nb, "%container rm scratchpad").strip().startswith("note")


def test_volumes_and_bind_mounts(root, tmp_path) -> None:
    nb = execute("volumes-and-bind-mounts", root, work(tmp_path))
    assert problems(nb) == []
    assert "first\nsecond" in text(nb, "%container run --rm -v notes:/notes busybox sh -c 'echo s")
    assert "log.txt" in text(nb, "%volume files notes")
    assert "from the container" in text(nb, "!cat shared/reply.txt")
    ro = text(nb, "out = %container run --rm -v {shared}:/shared:ro")
    assert "Read-only file system" in ro and re.search(r",\s+1\)", ro)


@pytest.fixture(scope="module")
def debian_tarball() -> Iterator[str]:
    """One Debian bookworm root (mmdebstrap, minbase, pandas and distributed) for the module."""
    given = os.environ.get("IPYDOCK_DEBIAN_TARBALL", "")
    if given and os.path.exists(given):
        yield given
        return
    require(os.geteuid() == 0, "mmdebstrap here needs root")
    require(shutil.which("mmdebstrap") is not None, "mmdebstrap is not installed")
    work = tempfile.mkdtemp(prefix="ipydock-debian-")
    path = os.path.join(work, "debian-science.tar")
    try:
        subprocess.run(
            ["mmdebstrap", "-q", "--variant=minbase", '--aptopt=Apt::Install-Recommends "false"',
             f"--include={PACKAGES}", "bookworm", path],
            check=True, timeout=900, capture_output=True,
        )  # fmt: skip
        yield path
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_data_science_environment(root, tmp_path, debian_tarball) -> None:
    nb = execute("data-science", root, work(tmp_path), IPYDOCK_DEBIAN_TARBALL=debian_tarball)
    assert problems(nb) == []
    table = text(nb, "import pandas as pd\n\npd.read_csv")
    assert re.search(r"north\s+50\s+1\d\.\d+\s+\d+\.\d+", table), table
    assert "<svg" in text(nb, "from IPython.display import SVG") and "<circle" in text(
        nb, "from IPython.display import SVG"
    )
    same = text(nb, "second = _.attrs")
    # short IDs shown, the whole IDs compared (`same as the first`)
    rows = re.findall(r"(first|second) build\s+([0-9a-f]{12})\s+(True|False)", same)
    assert [r[0] for r in rows] == ["first", "second"] and rows[0][1] == rows[1][1], same
    assert [r[2] for r in rows] == ["True", "True"], same
    lint = text(nb, "%%dockerfile --lint")
    for code in ("IPD001", "IPD003", "IPD004", "IPD005", "IPD006", "IPD007", "IPD008"):
        assert code in lint
    assert os.listdir(tmp_path / "work") == []


@pytest.mark.slow
@pytest.mark.docker
def test_dask_cluster_on_a_user_defined_network_then_a_swarm(root, tmp_path, debian_tarball,
                                                            cluster) -> None:  # fmt: skip
    """The bundled engine's cluster, then the same on a real two-node swarm (tests/engines):
    services placed on both nodes, the job's tasks run on both."""
    registry = cluster.image.split("/")[0]
    swarm = {"IPYDOCK_SWARM_HOST": cluster.manager.host, "IPYDOCK_SWARM_REGISTRY": registry}
    nb = execute("dask-cluster", root, work(tmp_path), IPYDOCK_DEBIAN_TARBALL=debian_tarball,
                 **swarm)  # fmt: skip
    assert problems(nb) == []
    answer = text(nb, "import json")
    assert "(506, ['worker1', 'worker2', 'worker3'])" in answer, answer  # sum of squares 0..11
    graph = text(nb, "%network ls --graph")
    assert all(name in graph for name in ("dask", "scheduler", "worker1", "worker3"))
    placed = text(nb, "if swarm:\n    tasks_now")
    assert "node-a" in placed and "node-b" in placed, placed
    swarm_job = text(nb, "import base64")
    assert "sum of squares: 506" in swarm_job, swarm_job
    assert os.listdir(tmp_path / "work") == []


@pytest.mark.docker
def test_the_notes_docker_commands_on_the_bundled_engine(root, tmp_path) -> None:
    require(shutil.which("docker") is not None, "the docker client (docker.io) is not installed")
    nb = execute("docker-cli", root, work(tmp_path))
    assert problems(nb) == []
    shown = text(nb, "%%bash\ndocker import")
    assert "hello from a container" in shown and "\nbuilt\n" in shown
    assert "hello: Exited (0)" in shown
    assert "hello" in text(nb, "%container ls -a") and "built" in text(nb, "%image ls")
    assert text(nb, "service.terminate()").strip().endswith("False")
    assert os.listdir(tmp_path / "work") == []
