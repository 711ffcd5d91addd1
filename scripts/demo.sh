#!/usr/bin/env bash
# The main job: set up, then open JupyterLab on the teaching notebooks (example-notebooks/).
# With --no-browser, or where there is no display, execute the first teaching notebook headless
# instead and write its HTML beside it (example-notebooks/containers-vs-vms.html).
# Usage: scripts/demo.sh [--no-browser]     (SETUP=0 skips scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
browser=1
for arg in "$@"; do
  case $arg in
    --no-browser) browser=0 ;;
    *) echo "usage: scripts/demo.sh [--no-browser]" >&2; exit 2 ;;
  esac
done
[[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]] || browser=0
[[ "${SETUP:-1}" == 0 ]] || scripts/setup.sh
# JupyterLab (and nbconvert, which it brings) for the notebooks
.venv/bin/python -c 'import jupyterlab, nbconvert' 2>/dev/null || .venv/bin/pip install -q -e ".[lab]"
first=containers-vs-vms.ipynb
root_flag=()
[[ $EUID -ne 0 ]] || root_flag=(--allow-root)
if ((browser)); then
  cd example-notebooks
  exec ../.venv/bin/jupyter lab "${root_flag[@]}" "$first"
fi
echo "no browser: executing example-notebooks/$first headless" >&2
.venv/bin/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=600 \
  "example-notebooks/$first"
echo "open example-notebooks/${first%.ipynb}.html, or run scripts/demo.sh on a machine with a display" >&2
