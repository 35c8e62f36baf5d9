#!/usr/bin/env bash
# The test suite: setup (which builds the dashboard), lint, type-check, Vitest, then pytest (real footage, models).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-deps.sh
bash scripts/services.sh
.venv/bin/ruff check metrica tests
.venv/bin/ruff format --check metrica tests
.venv/bin/mypy
# Dashboard component tests (Vitest); its production build ran in setup.sh.
(cd frontend && npm test --silent)
set +e
.venv/bin/python -m pytest -ra "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
