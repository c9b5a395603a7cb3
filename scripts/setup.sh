#!/usr/bin/env bash
# Installs and starts what amlsim needs on a Debian machine, then installs the workspace.
# Idempotent: whatever is already there is left alone. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages: Docker engine (compute targets), busybox-static (image rootfs),
#     docker-registry (the workspace container registry), chromium (the dashboard's
#     end-to-end tests and browser benchmark drive it headless), python3-azure (the Azure
#     SDK for Python the ARM endpoint's tests drive; ~1.2 GB, without azure-cli) ----------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || missing+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
[ -x /usr/bin/chromium ] || missing+=(chromium)
/usr/bin/python3 -c 'import azure.mgmt.machinelearningservices, azure.identity' >/dev/null 2>&1 || missing+=(python3-azure)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Docker engine: no bridge, so containers only ever get their own loopback -----------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (--bridge=none, log: /tmp/amlsim-dockerd.log)"
  as_root sh -c 'nohup dockerd --bridge=none --iptables=false --ip-masq=false >/tmp/amlsim-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/amlsim-dockerd.log" >&2; exit 1; }
fi

# --- pnpm at its pin --------------------------------------------------------------------
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  log "installing pnpm@$PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

# --- the workspace: better-sqlite3 compiles against the local Node headers (no download) --
export npm_config_nodedir=/usr
log "pnpm install --frozen-lockfile"
pnpm install --frozen-lockfile
# A failed native build can leave pnpm saying "up to date" without the .node file.
node -e "require('./packages/store/node_modules/better-sqlite3')" 2>/dev/null || pnpm rebuild better-sqlite3
# --- the dashboard amlsim serve shows (packages/web -> packages/web/dist) ------------------
log "building the dashboard (pnpm build)"
pnpm build >/dev/null
log "ready"
