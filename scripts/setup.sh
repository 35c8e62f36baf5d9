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
