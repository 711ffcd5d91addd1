#!/usr/bin/env bash
# Set up and run every test (lint, types, pytest with real dockerd, overlayfs and namespaces).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` for the fast part.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check ipydock tests bench
.venv/bin/ruff format --check ipydock tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
