# shellcheck shell=bash
# Sourceable environment helpers for scripts/ and .ci/: the system packages the purse
# needs (install_deps) and a pcscd of our own in the background (start_pcscd /
# stop_pcscd). Debian/Ubuntu, as root or with sudo; no systemd needed.
#
#   . scripts/lib/env.sh
#   install_deps
#   start_pcscd; trap stop_pcscd EXIT

PURSE_DEPS=(pcscd libpcsclite-dev vsmartcard-vpcd pkg-config pcsc-tools)
# The browser end-to-end test (extension/e2e) drives Debian's Chromium; node and npm
# (the machine's, else Debian's) run it.
PURSE_DEPS+=(chromium)
# ...and Debian's Firefox ESR (driven by puppeteer-core over WebDriver BiDi).
PURSE_DEPS+=(firefox-esr)
# The clearing office's PostgreSQL tests start a throw-away server (scripts/lib/postgres.sh).
PURSE_DEPS+=(postgresql)
# The demo makes its clearing office's certificate with the openssl command.
PURSE_DEPS+=(openssl)
command -v npm >/dev/null 2>&1 || PURSE_DEPS+=(nodejs npm)
PURSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# pcscd's PID file and log (when we start it) live here.
PURSE_RUN_DIR="${PURSE_RUN_DIR:-$PURSE_ROOT/target/run}"
# The PID of the pcscd this shell started; empty when we did not start one.
PURSE_PCSCD_PID=""

_purse_log() { echo "[env] $*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
_purse_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    _purse_log "need root or sudo to run: $*"
    return 1
  fi
}

_purse_pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Installs the missing packages of PURSE_DEPS; does nothing (no apt at all) when every
# one is installed. apt-get update runs only when something must be installed.
install_deps() {
  local missing=() p
  for p in "${PURSE_DEPS[@]}"; do
    _purse_pkg_installed "$p" || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    _purse_log "system packages present: ${PURSE_DEPS[*]}"
  else
    _purse_log "installing: ${missing[*]}"
    _purse_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    _purse_as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    _purse_log "cargo not found: install Rust (e.g. https://rustup.rs) and retry"
    return 1
  fi
  _purse_npm_ci
}

# The extension's npm packages (playwright-core, addons-linter, ajv) from its lockfile,
# when node_modules is missing or older than the lockfile.
_purse_npm_ci() {
  local ext="$PURSE_ROOT/extension"
  [ -f "$ext/package-lock.json" ] || return 0
  if [ ! -f "$ext/node_modules/.package-lock.json" ] ||
    [ "$ext/package-lock.json" -nt "$ext/node_modules/.package-lock.json" ]; then
    _purse_log "npm ci in extension/"
    (cd "$ext" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# PIDs of running pcscd processes (from /proc: no procps needed). A pcscd in another
# mount namespace (scripts/shop-pcscd: the shop's own PC/SC service) is not the shared
# one and is left out; one whose namespace we may not read is counted.
_purse_pcscd_pids() {
  local f pid ns own
  own="$(readlink /proc/self/ns/mnt 2>/dev/null || true)"
  for f in /proc/[0-9]*/comm; do
    [ "$(cat "$f" 2>/dev/null)" = "pcscd" ] || continue
    pid="${f#/proc/}"
    pid="${pid%/comm}"
    ns="$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)"
    [ -n "$ns" ] && [ -n "$own" ] && [ "$ns" != "$own" ] && continue
    echo "$pid"
  done
  return 0
}

# Whether a PC/SC client can establish a context and list the vpcd readers.
_purse_pcsc_ready() {
  pcsc_scan -r 2>/dev/null | grep -q "Virtual PCD"
}

# Starts `pcscd -f -a` (foreground, APDU log; never -x, which quits when idle) in the
# background unless a pcscd already runs, then waits until clients can use it. Sets
# PURSE_PCSCD_PID and writes $PURSE_RUN_DIR/pcscd.pid when it started one.
start_pcscd() {
  local running i
  running="$(_purse_pcscd_pids)"
  if [ -n "$running" ]; then
    _purse_log "pcscd already running (pid $(echo "$running" | tr '\n' ' ')): using it, not ours to stop"
  else
    mkdir -p "$PURSE_RUN_DIR"
    if [ "$(id -u)" -eq 0 ]; then
      pcscd -f -a >"$PURSE_RUN_DIR/pcscd.log" 2>&1 &
    else
      sudo pcscd -f -a >"$PURSE_RUN_DIR/pcscd.log" 2>&1 &
    fi
    PURSE_PCSCD_PID=$!
    echo "$PURSE_PCSCD_PID" >"$PURSE_RUN_DIR/pcscd.pid"
    _purse_log "started pcscd (pid $PURSE_PCSCD_PID, log $PURSE_RUN_DIR/pcscd.log)"
  fi
  # A daemon's readiness has no event to wait on here: poll briefly, bounded.
  for i in $(seq 100); do
    if _purse_pcsc_ready; then
      _purse_log "pcscd ready: readers $(pcsc_scan -r 2>/dev/null | sed 's/^[0-9]*: //' | paste -sd, -)"
      return 0
    fi
    if [ -n "$PURSE_PCSCD_PID" ] && ! kill -0 "$PURSE_PCSCD_PID" 2>/dev/null; then
      _purse_log "pcscd exited at start; its log:"
      cat "$PURSE_RUN_DIR/pcscd.log" >&2 || true
      PURSE_PCSCD_PID=""
      return 1
    fi
    sleep 0.1
  done
  _purse_log "pcscd does not list the 'Virtual PCD' readers after 10 s (is vsmartcard-vpcd"
  _purse_log "installed, and was a running pcscd started before it? then restart that pcscd)"
  return 1
}

# Stops the pcscd that start_pcscd started (none other), and waits for it to exit: a
# new pcscd cannot start while the old one still holds its socket.
stop_pcscd() {
  local pid="${PURSE_PCSCD_PID:-}" i
  [ -n "$pid" ] || return 0
  PURSE_PCSCD_PID=""
  rm -f "$PURSE_RUN_DIR/pcscd.pid"
  if kill -0 "$pid" 2>/dev/null; then
    _purse_as_root kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      _purse_log "pcscd (pid $pid) ignored SIGTERM for 10 s: killing it"
      _purse_as_root kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  _purse_log "stopped pcscd (pid $pid)"
}
