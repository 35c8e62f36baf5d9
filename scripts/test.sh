#!/usr/bin/env bash
# The test suite: install, lint, type-check, then pytest against real footage and models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-deps.sh
bash scripts/services.sh
.venv/bin/ruff check metrica tests
.venv/bin/ruff format --check metrica tests
.venv/bin/mypy
set +e
.venv/bin/python -m pytest -ra "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
