"""The state machine and the pure config conversion: no kernel needed."""

from __future__ import annotations

import pytest

from ipydock.commands.runflags import parse_mounts, parse_restart
from ipydock.engine.containers import ALLOWED, RunOptions, State, Status, transition
from ipydock.engine.containers.config import container_config
from ipydock.errors import InvalidMountSpec, InvalidStateTransition, UsageError


def test_every_allowed_move_works_and_every_other_raises() -> None:
    for start in Status:
        for to in Status:
            state = State(status=start)
            if to in ALLOWED[start]:
                transition("c" * 64, state, to)
                assert state.status == to
            else:
                with pytest.raises(InvalidStateTransition) as info:
                    transition("c" * 64, state, to)
                assert (info.value.from_, info.value.to) == (start.value, to.value)


def test_dead_is_final() -> None:
    assert ALLOWED[Status.DEAD] == frozenset()


def test_state_round_trips_through_json() -> None:
    state = State(status=Status.EXITED, exit_code=3, oom_killed=True, cgroup=["/x"])
    assert State.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    ("flag", "kind", "source", "target", "ro"),
    [
        ("data:/srv", "volume", "data", "/srv", False),
        ("/host/dir:/srv:ro", "bind", "/host/dir", "/srv", True),
        ("/anon", "volume", "", "/anon", False),
    ],
)
def test_volume_flags(flag: str, kind: str, source: str, target: str, ro: bool) -> None:
    (m,) = parse_mounts((flag,), ())
    assert (m.type, m.source, m.target, m.readonly) == (kind, source, target, ro)


@pytest.mark.parametrize("flag", ["rel/path:/x", "a:b:c:d", "vol:relative", "v@l:/x"])
def test_bad_volume_flags_name_the_problem(flag: str) -> None:
    with pytest.raises(InvalidMountSpec) as info:
        parse_mounts((flag,), ())
    assert info.value.spec == flag


def test_mount_flag_and_duplicates() -> None:
    (m,) = parse_mounts((), ("type=tmpfs,target=/t,tmpfs-size=1m",))
    assert (m.type, m.options) == ("tmpfs", ("size=1048576",))
    with pytest.raises(InvalidMountSpec, match="Duplicate"):
        parse_mounts(("aa:/x",), ("type=volume,source=bb,target=/x",))


def test_restart_policies() -> None:
    assert parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert parse_restart("no")["Name"] == ""
    with pytest.raises(UsageError):
        parse_restart("always:2")


def test_config_uses_the_image_defaults_as_docker() -> None:
    image = {"config": {"Env": ["PATH=/bin", "A=1"], "Entrypoint": ["/ep"], "Cmd": ["x"],
                        "WorkingDir": "/w", "User": "app", "StopSignal": "SIGINT"}}  # fmt: skip
    opts = RunOptions("img", command=("y", "z"), env=("A=2", "B=3"))
    cfg = container_config("c" * 64, "n", "sha256:i", "img", image, opts, "now")
    assert (cfg["Path"], cfg["Args"]) == ("/ep", ["y", "z"])
    assert cfg["Config"]["Env"] == ["PATH=/bin", "A=2", "B=3"]
    assert (cfg["Config"]["User"], cfg["Config"]["WorkingDir"]) == ("app", "/w")
    assert cfg["Config"]["StopSignal"] == "SIGINT"
    opts = RunOptions("img", command=("sh",), entrypoint="")
    cleared = container_config("c" * 64, "n", "i", "img", image, opts, "now")
    assert (cleared["Path"], cleared["Args"]) == ("sh", [])
