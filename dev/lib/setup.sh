# Sourced by dev/test and dev/demo: installs what the project needs on a fresh machine, idempotently.
# Python packages come pinned from constraints.txt; the local IdP's npm packages from dev/idp/package-lock.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

ensure_system_packages() {
  # Node.js runs the local IdP; Chromium runs the browser tests (tests/e2e). Debian packages only:
  # nothing downloads a browser build of its own.
  local missing=()
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # PostgreSQL's server holds the soak's metadata database (dev/bench/soak starts its own throw-away cluster).
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
      echo "error: need root (or sudo) to apt-get install ${missing[*]}" >&2
      exit 1
    fi
    # No cluster of its own: the package would otherwise create and start one on port 5432 we never use.
    mkdir -p /etc/postgresql-common
    [ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold \
      "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$py" -m venv .venv
  fi
  local stamp=.venv/.installed
  if [ ! -f "$stamp" ] || [ constraints.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "== installing Python packages (pinned by constraints.txt)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev,docs,luigi]'
    touch "$stamp"
  fi
}

ensure_idp_modules() {
  if [ ! -d dev/idp/node_modules ] || [ dev/idp/package-lock.json -nt dev/idp/node_modules ]; then
    echo "== installing the local IdP (npm ci in dev/idp)"
    (cd dev/idp && npm ci --silent --no-audit --no-fund)
    touch dev/idp/node_modules
  fi
}

setup_all() {
  ensure_system_packages
  ensure_venv
  ensure_idp_modules
}
