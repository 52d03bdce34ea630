# Shared by scripts/up and scripts/test: install what is missing, idempotently.
# shellcheck shell=bash

log() { printf '\033[1m[hubbub]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[hubbub] %s\033[0m\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = "0" ]; }

apt_install() {
  # apt_install PKG... (root only); runs `apt-get update` once per call site if a package is unknown.
  if ! is_root; then return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1
}

port_open() { # port_open HOST PORT
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0 || return 1
}

ensure_node() {
  command -v node >/dev/null 2>&1 || die "Node.js 20+ is required (apt-get install nodejs, or https://nodejs.org)."
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js 20+ is required; found $(node -v)."
}

ensure_pnpm() {
  if ! command -v pnpm >/dev/null 2>&1; then
    log "installing pnpm 10 (npm install -g pnpm@10)"
    npm install -g pnpm@10 >/dev/null 2>&1 || die "could not install pnpm: run 'npm install -g pnpm@10'"
  fi
}

ensure_deps() {
  # Reinstall only when the lockfile changed since the last install.
  local stamp=node_modules/.hubbub-lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s pnpm-lock.yaml "$stamp"; then
    log "installing dependencies (pnpm install --frozen-lockfile)"
    pnpm install --frozen-lockfile --reporter=silent
    cp pnpm-lock.yaml "$stamp"
  fi
}

build() {
  log "building (tsc -b)"
  pnpm -s build
}

ensure_nats_binary() {
  if command -v nats-server >/dev/null 2>&1; then return 0; fi
  [ -x /usr/sbin/nats-server ] && return 0
  if is_root; then
    log "installing nats-server (apt-get install nats-server)"
    apt_install nats-server || die "apt-get install nats-server failed"
  else
    die "nats-server is missing. Install it with: sudo apt-get install -y nats-server"
  fi
}

nats_server_bin() { command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server; }
