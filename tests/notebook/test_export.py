"""``ipydock notebook export``: a notebook's %%dockerfile cells as Dockerfiles, build.sh and
binder/; ``docker build`` of an exported Dockerfile gives the history ipydock's build gave."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ipydock.errors import UsageError
from ipydock.notebook_export import BINDER_APT, dockerfile_cells, export

APP = """FROM ipydock-test/nb-busybox
COPY hello.txt /hello.txt
RUN cat /hello.txt > /copy && rm /etc/group
ENV GREETING=hi
CMD ["cat", "/copy"]
"""


def _hashless(created_by: str) -> str:
    return re.sub(r"(file|dir|multi):[0-9a-f]{64}", r"\1:<hash>", created_by)


def _notebook(tmp_path, app: str = APP) -> str:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "hello.txt").write_text("hello\n")
    nb = new_notebook(
        cells=[
            new_markdown_cell("# A notebook"),
            new_code_cell("%load_ext ipydock"),
            new_code_cell(f"%%dockerfile -t class/app:1 --build-arg V=1 ctx\n{app}"),
            new_code_cell("%%dockerfile --lint\nFROM debian\n"),
            new_code_cell("%%dockerfile -t tool --target build {where}\nFROM scratch AS build\n"),
            new_code_cell("%%dockerfile\nFROM scratch\nENV A=1"),
        ]
    )
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, str(path))
    return str(path)


def test_cells_dockerfiles_script_and_binder(tmp_path) -> None:
    path = _notebook(tmp_path)
    assert [n for n, _, _ in dockerfile_cells(path)] == [3, 5, 6]  # not the --lint cell
    done = export(path, str(tmp_path / "out"))
    out = tmp_path / "out"
    assert [os.path.basename(i.dockerfile) for i in done.images] == [
        "app-1.Dockerfile", "tool.Dockerfile", "cell6.Dockerfile"
    ]  # fmt: skip
    assert (out / "app-1.Dockerfile").read_text() == APP
    assert (out / "cell6.Dockerfile").read_text() == "FROM scratch\nENV A=1\n"
    script = (out / "build.sh").read_text().splitlines()
    assert "$DOCKER build -t class/app:1 --build-arg V=1 -f app-1.Dockerfile ../ctx" in script
    assert "# cell 5 names Python expressions ({…}): fill them in" in script
    assert "$DOCKER build -f cell6.Dockerfile .." in script
    assert done.unresolved == [5]
    assert os.access(out / "build.sh", os.X_OK) and os.access(out / "binder" / "postBuild", os.X_OK)
    assert (out / "binder" / "apt.txt").read_text().split() == BINDER_APT
    assert (out / "binder" / "requirements.txt").read_text().startswith("ipydock")
    assert subprocess.run(["bash", "-n", str(out / "binder" / "postBuild")]).returncode == 0
    assert subprocess.run(["sh", "-n", str(out / "build.sh")]).returncode == 0


def test_errors_are_usage_errors(tmp_path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        export(str(tmp_path / "nope.ipynb"))
    empty = tmp_path / "empty.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), str(empty))
    with pytest.raises(UsageError, match="has no %%dockerfile cell"):
        export(str(empty))
    assert not os.path.exists(tmp_path / "empty-export")  # nothing half-written


def test_the_cli_and_the_magic(tmp_path, ip) -> None:
    path = _notebook(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "ipydock", "--root", str(tmp_path / "store"), "notebook",
         "export", path, "-o", str(tmp_path / "cli")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "app-1.Dockerfile" in proc.stdout and "cell 5 has {python}" in proc.stderr
    done = ip.run_line_magic("ipydock", f"notebook export {path} -o {tmp_path / 'magic'}")
    assert [i.tags for i in done.images] == [["class/app:1"], ["tool"], []]
    assert "binder/postBuild" in repr(done)


def test_the_magic_exports_the_notebook_it_runs_in(tmp_path, ip, monkeypatch) -> None:
    """Jupyter Server names the kernel's notebook (JPY_SESSION_NAME), relative to its root."""
    path = _notebook(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", "course/lesson.ipynb")
    done = ip.run_line_magic("ipydock", "notebook export -o here")
    assert done.directory == str(tmp_path / "here") and len(done.images) == 3
    monkeypatch.delenv("JPY_SESSION_NAME")
    with pytest.raises(Exception, match="name the notebook"):
        ip.run_line_magic("ipydock", "notebook export")
    assert os.path.exists(path)


@pytest.mark.docker
@pytest.mark.root
def test_docker_build_of_an_export_gives_the_same_history(
    tmp_path, dockerd, backend, busybox_tgz
) -> None:
    """The exported build.sh run by docker (legacy builder) and ipydock's build of the cell."""
    dockerd.run("import", "-c", 'CMD ["sh"]', busybox_tgz, "ipydock-test/nb-busybox")
    backend.import_image(busybox_tgz, "ipydock-test/nb-busybox", changes=['CMD ["sh"]'])
    path = _notebook(tmp_path, APP)
    done = export(path, str(tmp_path / "out"))
    app = done.images[0]
    ours = backend.build(str(tmp_path / "ctx"), dockerfile=app.dockerfile, tags=app.tags)
    try:
        script = os.path.join(done.directory, "build.sh")
        with open(script) as f:
            first_build = [line for line in f if line.startswith("$DOCKER build -t class/app")]
        subprocess.run(["sh", "-euc", f'cd "{done.directory}"; DOCKER=docker\n{first_build[0]}'],
                       env=dockerd.env(), check=True, capture_output=True, timeout=300)  # fmt: skip
        import docker

        client = docker.DockerClient(base_url=dockerd.host)
        try:
            theirs = client.api.history("class/app:1")
        finally:
            client.close()
        mine = backend.history(ours.image_id)
        # COPY's file:<hash> covers the file's header (its mtime too): the same rule as the
        # builder's side-by-side tests, the hash named but not compared
        assert [_hashless(r.created_by) for r in mine] == [
            _hashless(h["CreatedBy"]) for h in theirs
        ]
        assert [r.size for r in mine] == [h["Size"] for h in theirs]
    finally:
        dockerd.run("rmi", "-f", "class/app:1", "ipydock-test/nb-busybox", check=False)
