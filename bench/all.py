"""Every speed table in one run: the scripts of ``bench/`` one after another, their output kept
as it came, under a header that names the machine (CPU, cores, memory, kernel, docker).

Run as root: ``python bench/all.py [--quick] [--only run,build] [--readme]``.

::

    bench_run.py  bench_build.py  bench_images.py  bench_network.py  bench_iperf.py
    bench_registry.py  bench_rootless.py  bench_service.py  bench_tty.py  bench_lab_panel.py
    bench_memory.py  bench_client.py                               (those present, in this order)
        ──> bench/out/speed.md   the header and one fenced block per script (also on stdout)
        ──> README.md            with --readme: the text between the two markers
                                 <!-- bench:all begin --> and <!-- bench:all end --> replaced

``--quick`` passes each script its smallest sensible counts (a look, not a measurement). A
script that fails leaves its error in its block and the others still run. Nothing is timed
here: each script measures beside docker/crun/skopeo in its own run and prints its ratios.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bench:all begin -->", "<!-- bench:all end -->"

# script, its options for a full run, for --quick
SCRIPTS: list[tuple[str, list[str], list[str]]] = [
    ("bench_run.py", [], ["-n", "10", "--rounds", "2"]),
    ("bench_build.py", [], ["--runs", "2"]),
    ("bench_images.py", [], ["--images", "200", "--runs", "3"]),
    ("bench_network.py", [], ["-n", "6", "--rounds", "2"]),
    ("bench_iperf.py", [], ["-t", "1", "--rounds", "1"]),
    ("bench_registry.py", [], ["--runs", "1", "--size-mb", "20"]),
    ("bench_rootless.py", [], ["-n", "6"]),
    ("bench_service.py", [], ["-n", "6", "--images", "200", "--rounds", "2"]),
    ("bench_tty.py", [], ["-n", "4", "--rounds", "2"]),
    ("bench_lab_panel.py", [], ["--images", "200", "--containers", "20", "--runs", "2"]),
    ("bench_memory.py", [], ["-n", "20", "--runs", "5"]),
    ("bench_client.py", [], ["-n", "10", "--runs", "10", "--rounds", "2"]),
]


def machine() -> str:
    """One paragraph naming the machine the figures come from."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), "")  # fmt: skip
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    docker = ""
    if shutil.which("dockerd"):
        out = subprocess.run(["dockerd", "--version"], capture_output=True, text=True)
        docker = out.stdout.strip()
    load = os.getloadavg()[0]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Measured {when} on {cpu or platform.processor() or 'an unknown CPU'}, "
            f"{os.cpu_count()} cores, {mem or 'unknown memory'}, Linux {platform.release()}, "
            f"Python {platform.python_version()}; {docker or 'no dockerd'}; load average "
            f"{load:.1f} at the start.")  # fmt: skip


def run_all(quick: bool, only: set[str]) -> str:
    parts = [machine(), ""]
    for script, full, small in SCRIPTS:
        name = script.removeprefix("bench_").removesuffix(".py")
        if only and name not in only or not (HERE / script).exists():
            continue
        argv = [sys.executable, str(HERE / script), *(small if quick else full)]
        print(f"# {' '.join(argv[1:])}", file=sys.stderr, flush=True)
        out = subprocess.run(argv, capture_output=True, text=True, cwd=HERE.parent)
        text = out.stdout.rstrip()
        if out.returncode != 0:
            tail = "\n".join(out.stderr.strip().splitlines()[-5:])
            text += f"\n(exited with {out.returncode}: {tail})"
        parts += [f"`bench/{script}{' ' + ' '.join(small) if quick and small else ''}`:", "",
                  "```", text, "```", ""]  # fmt: skip
    return "\n".join(parts)


def write_readme(readme: Path, section: str) -> None:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no {BEGIN} … {END} markers to replace between")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda m: f"{BEGIN}\n{section}\n{END}", text, count=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts: a look, not a measurement")
    ap.add_argument("--only", default="", help="comma-separated: run,build,images,network,…")
    ap.add_argument("--readme", action="store_true", help="write the section into README.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (containers, dockerd and cgroups need it)")
    section = run_all(args.quick, {s for s in args.only.split(",") if s})
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "speed.md").write_text(section + "\n")
    print(section)
    if args.readme:
        write_readme(HERE.parent / "README.md", section)


if __name__ == "__main__":
    main()
