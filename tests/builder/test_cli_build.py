"""``ipydock build`` through the real CLI in a subprocess: docker-like output, -q, -f -, errors."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def ctx(tmp_path, builder):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM busybox\nRUN echo built\nENV A=1\n")
    return d


def test_build_prints_like_docker_build(ipd, ctx) -> None:
    out = ipd("build", "-t", "cli/app:1", str(ctx)).stdout.splitlines()
    assert out[0].startswith("Sending build context to the engine  ")
    assert out[1] == "Step 1/3 : FROM busybox"
    assert out[2].startswith(" ---> ") and len(out[2]) == 18
    assert out[3:5] == ["Step 2/3 : RUN echo built", "built"]
    assert out[-2].startswith("Successfully built ")
    assert out[-1] == "Successfully tagged cli/app:1"
    again = ipd("image", "build", "-t", "cli/app:1", str(ctx)).stdout.splitlines()
    assert again.count(" ---> Using cache") == 2 and "built" not in again


def test_quiet_prints_the_id_and_stdin_dockerfile(ipd, ctx) -> None:
    image_id = ipd("build", "-q", str(ctx)).stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    proc = ipd("build", "-q", "-f", "-", str(ctx), input="FROM busybox\nLABEL x=1\n")
    assert proc.stdout.strip().startswith("sha256:")
    proc = ipd("build", "-q", "-", input="FROM busybox\nLABEL y=1\n")
    assert proc.stdout.strip().startswith("sha256:")


def test_errors_are_one_line_with_the_dockerfile_line(ipd, ctx) -> None:
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo out && exit 4\n")
    proc = ipd("build", "-t", "cli/bad", str(ctx), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "Error: Dockerfile line 2: The command 'RUN echo out && exit 4' returned a non-zero code: 4"
    )
    assert "out" in proc.stderr and "Traceback" not in proc.stderr
    (ctx / "Dockerfile").write_text("FROM busybox\nBOGUS x\n")
    proc = ipd("build", str(ctx), check=False)
    assert proc.stderr == "Error: Dockerfile line 2: BOGUS x: unknown instruction: BOGUS\n"


def test_build_args_and_target(ipd, ctx) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS one\nARG X\nRUN echo x=$X\nFROM one AS two\nRUN echo never\n"
    )
    out = ipd("build", "--build-arg", "X=42", "--target", "one", str(ctx)).stdout
    assert "x=42" in out and "never" not in out and "Step 3/3" in out
    warn = ipd("build", "--build-arg", "UNUSED=1", "--target", "one", str(ctx)).stdout
    assert "[Warning] One or more build-args ['UNUSED'] were not consumed" in warn
