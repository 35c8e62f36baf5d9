#!/usr/bin/env bash
# Creates .venv with everything Metrica needs. Safe to re-run: pip skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch first, pinned to the builds on this machine's disk (constraints.txt): a plain
# `torch` requirement would otherwise pull a several-GB build from the registry.
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt torch torchvision
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
echo "metrica installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))" >&2
# The dashboard (frontend/): React + TypeScript built by Vite into frontend/dist, which the API serves
# at "/". The build is part of setup: a service without it has no phone app.
if ! command -v npm >/dev/null 2>&1; then
  echo "npm (Node.js 20 or newer) is required to build the dashboard in frontend/: install nodejs and npm" >&2
  exit 1
fi
(cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
echo "dashboard built in frontend/dist" >&2
