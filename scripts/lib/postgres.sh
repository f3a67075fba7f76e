# shellcheck shell=bash
# A throw-away PostgreSQL 15 (Debian's `postgresql` package) for the clearing office's
# tests: initdb + pg_ctl in a temporary directory, as an unprivileged user (as root:
# `nobody` through runuser), listening on a free loopback port and a unix socket in that
# directory, trust authentication for the loopback only. Nothing of the system's
# PostgreSQL service is used or touched.
#
#   . scripts/lib/postgres.sh
#   start_postgres; trap stop_postgres EXIT
#   echo "$CLEARING_TEST_PG_URL"      # postgres://postgres@127.0.0.1:PORT/postgres

PURSE_PG_BIN="${PURSE_PG_BIN:-/usr/lib/postgresql/15/bin}"
PURSE_PG_DIR=""

_pg_log() { echo "[postgres] $*" >&2; }

# Runs a command as the server's user.
_pg_as_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

_pg_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
  if [ ! -x "$PURSE_PG_BIN/initdb" ]; then
    _pg_log "$PURSE_PG_BIN/initdb not found: install Debian's postgresql package (install_deps)"
    return 1
  fi
  PURSE_PG_DIR="$(mktemp -d /tmp/purse-pg.XXXXXX)"
  chmod 0755 "$PURSE_PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown nobody: "$PURSE_PG_DIR"
  local port
  port="$(_pg_free_port)"
  _pg_as_user "$PURSE_PG_BIN/initdb" -D "$PURSE_PG_DIR/data" -U postgres --auth=trust \
    --encoding=UTF8 --no-locale >"$PURSE_PG_DIR/initdb.log" 2>&1 || {
    cat "$PURSE_PG_DIR/initdb.log" >&2
    return 1
  }
  _pg_as_user "$PURSE_PG_BIN/pg_ctl" -D "$PURSE_PG_DIR/data" -l "$PURSE_PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PURSE_PG_DIR -c fsync=on -c max_connections=200" \
    start >/dev/null || {
    cat "$PURSE_PG_DIR/server.log" >&2
    return 1
  }
  export CLEARING_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  _pg_log "PostgreSQL 15 on 127.0.0.1:$port ($PURSE_PG_DIR)"
}

stop_postgres() {
  [ -n "$PURSE_PG_DIR" ] || return 0
  _pg_as_user "$PURSE_PG_BIN/pg_ctl" -D "$PURSE_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PURSE_PG_DIR"
  PURSE_PG_DIR=""
  unset CLEARING_TEST_PG_URL
}
