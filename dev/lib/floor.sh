#!/usr/bin/env bash
# The oldest supported Airflow minor (the floor of pyproject's apache-airflow>=3.1.1), tested for real:
# creates .venv-3.1 from constraints/3.1.txt (idempotent, stamped like setup.sh's ensure_venv) and runs the
# unit, app and integration tests with it. The main .venv (constraints.txt, today's Airflow) is untouched.
#
#   dev/lib/floor.sh                      # what dev/test runs
#   dev/lib/floor.sh tests/unit -q        # other pytest arguments instead of the default set
#   FLOOR=3.2 dev/lib/floor.sh            # any minor that has constraints/<minor>.txt
#
# Executed, it installs what the integration tests need (setup.sh's system packages and the local IdP's
# npm modules) first; sourced, it only defines ensure_floor_venv and run_floor_tests.
set -euo pipefail
FLOOR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FLOOR="${FLOOR:-3.1}"
FLOOR_TESTS=(tests/unit tests/app tests/integration -q)

ensure_floor_venv() {
  local py="${PYTHON:-python3}" venv="$FLOOR_ROOT/.venv-$FLOOR" constraints="$FLOOR_ROOT/constraints/$FLOOR.txt"
  if [ ! -f "$constraints" ]; then
    echo "error: no $constraints (pip freeze of a venv with Airflow $FLOOR.x)" >&2
    return 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "== creating .venv-$FLOOR"
    "$py" -m venv "$venv"
  fi
  local stamp="$venv/.installed"
  if [ ! -f "$stamp" ] || [ "$constraints" -nt "$stamp" ] || [ "$FLOOR_ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "== installing Python packages for Airflow $FLOOR (pinned by constraints/$FLOOR.txt)"
    "$venv/bin/python" -m pip install -q --upgrade pip
    (cd "$FLOOR_ROOT" && "$venv/bin/python" -m pip install -q -c "constraints/$FLOOR.txt" -e '.[dev]')
    touch "$stamp"
  fi
}

run_floor_tests() {
  local venv="$FLOOR_ROOT/.venv-$FLOOR"
  echo "== pytest on Airflow $("$venv/bin/python" -c 'import airflow; print(airflow.__version__)' 2>/dev/null | tail -1)"
  # The venv's python: the integration tests start the sibling `airflow` binary of sys.executable.
  (cd "$FLOOR_ROOT" && "$venv/bin/python" -m pytest "$@")
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  . "$FLOOR_ROOT/dev/lib/setup.sh"
  ensure_system_packages
  ensure_idp_modules
  ensure_floor_venv
  if [ $# -gt 0 ]; then run_floor_tests "$@"; else run_floor_tests "${FLOOR_TESTS[@]}"; fi
fi
