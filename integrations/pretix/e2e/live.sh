#!/usr/bin/env bash
# A real pretix with the purse provider, on real parts: PostgreSQL 15 started as an
# unprivileged user (nobody) in a temp dir, a real shop-plugin serve driving its SAM card
# (sam-emulator) in its own reader on the shop's own PC/SC service (scripts/shop-pcscd;
# the shared pcscd is the shopper's), pretix migrated
# and rebuilt from the venv of scripts/test-pretix, its dev server on loopback. Creates an
# organizer, an event with a ticket and the purse provider enabled, then walks the
# storefront as a shopper up to the payment step and checks that it offers the purse card.
# Then the shopper in each browser of $PURSE_PRETIX_BROWSERS (default: chromium firefox)
# buys the ticket with the purse extension and the card emulator on vpcd (pcscd started
# unless one runs), the order is paid in pretix's REST API, and the day's batch is settled
# and cleared (extension/e2e/pretix.mjs). PURSE_PRETIX_BROWSERS="" skips the browsers.
#
# Run by `scripts/test-pretix --live` (needs root: apt for missing packages, runuser).
# KEEP=1 leaves everything running and prints the addresses.
set -euo pipefail
cd "$(dirname "$0")/../../.."
REPO=$PWD
VENV=$REPO/target/pretix-venv
B=$REPO/target/debug
PG=/usr/lib/postgresql/15/bin
HERE=$REPO/integrations/pretix/e2e
. "$REPO/scripts/lib/env.sh"
. "$REPO/scripts/lib/shop-sam.sh"

secs() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(secs)" 'BEGIN { printf "%.1f s", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

need=()
[ -x "$PG/initdb" ] || need+=(postgresql-15)
command -v msgfmt >/dev/null || need+=(gettext)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/pretix-live.XXXXXX")
chmod 755 "$D"
pids=()
cleanup() {
  stop_pcscd
  if [ "${KEEP:-0}" = 1 ]; then echo "== KEEP=1: left running in $D"; return; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_shop_sam
  [ -f "$D/pg/postmaster.pid" ] && runuser -u nobody -- "$PG/pg_ctl" -D "$D/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap cleanup EXIT

t0=$(secs)
echo "== PostgreSQL 15 as nobody in $D/pg"
mkdir -p "$D/pg" "$D/pgsock" && chown nobody:nogroup "$D/pg" "$D/pgsock"
pgport=$(free_port)
runuser -u nobody -- "$PG/initdb" -D "$D/pg" -U pretix --auth=trust -E UTF8 >/dev/null
runuser -u nobody -- "$PG/pg_ctl" -D "$D/pg" -w -l "$D/pg/log" \
  -o "-h 127.0.0.1 -p $pgport -k $D/pgsock" start >/dev/null
runuser -u nobody -- "$PG/createdb" -h 127.0.0.1 -p "$pgport" -U pretix pretix
echo "   on 127.0.0.1:$pgport ($(took "$t0"))"

echo "== the shop plugin (a SAM card in EUR in its own reader)"
mkdir -m 700 "$D/plugin"
# The issuer's keys stay out of the plugin's directory (the clearing uses them).
"$B/purse-issuer" keys add --keys "$D/issuer.json" --kv 1 >/dev/null
"$B/purse-issuer" sam issue-card --keys "$D/issuer.json" --sam-id 5a000000000000f1 \
  --currency EUR --key-version 1 --accept 1 --out "$D/sam-card.json" >/dev/null
start_shop_sam "$D/sam" "$D/sam-card.json" "$B/sam-emulator"
echo "   SAM in '$SHOP_SAM_READER' of the shop's PC/SC service"
webport=$(free_port)
key=$(cd "$D/plugin" && PCSCLITE_CSOCK_NAME=$SHOP_PCSC_SOCKET "$B/shop-plugin" init \
  --sam-reader "$SHOP_SAM_READER" --listen 127.0.0.1:0 \
  --allowed-origin "http://127.0.0.1:$webport" | grep -E '^sk_')
PCSCLITE_CSOCK_NAME=$SHOP_PCSC_SOCKET RUST_LOG=warn,shop_plugin=info "$B/shop-plugin" serve \
  --config "$D/plugin/shop-plugin.toml" 2>"$D/plugin/serve.log" &
pids+=($!)
addr=""
for _ in $(seq 1 300); do  # its log says `listening on ADDR` once it serves
  addr=$(grep -o 'listening on [0-9.:]*' "$D/plugin/serve.log" | cut -d' ' -f3 || true)
  [ -n "$addr" ] && break
  kill -0 "${pids[-1]}" || { cat "$D/plugin/serve.log" >&2; exit 1; }
  read -r -t 0.1 <> <(:) || true
done
[ -n "$addr" ] || { echo "shop-plugin serve did not start" >&2; exit 1; }
echo "   on $addr"

echo "== pretix: configuration, migrate, rebuild"
mkdir -p "$D/data"
cat >"$D/pretix.cfg" <<EOF
[pretix]
instance_name=purse-live
url=http://127.0.0.1:$webport
datadir=$D/data
allow_http_to_private_networks=on
[database]
backend=postgresql
name=pretix
user=pretix
host=127.0.0.1
port=$pgport
[mail]
from=tickets@example.org
host=127.0.0.1
port=1
EOF
export PRETIX_CONFIG_FILE=$D/pretix.cfg
t1=$(secs)
"$VENV/bin/python" -m pretix migrate --noinput >"$D/migrate.log" 2>&1 || { tail -30 "$D/migrate.log" >&2; exit 1; }
echo "   migrate: $(took "$t1")"
t1=$(secs)
"$VENV/bin/python" -m pretix rebuild >"$D/rebuild.log" 2>&1 || { tail -30 "$D/rebuild.log" >&2; exit 1; }
echo "   rebuild: $(took "$t1")"

echo "== organizer, event, ticket; purse provider enabled"
out=$(PURSE_PLUGIN_URL="http://$addr" PURSE_API_KEY="$key" \
  PURSE_WEBHOOK_SECRET="$(cat "$D/plugin/webhook-secret")" \
  "$VENV/bin/python" -m pretix shell <"$HERE/setup_event.py" 2>"$D/setup.log") \
  || { cat "$D/setup.log" >&2; exit 1; }
read -r _ event_path item <<<"$(grep '^EVENT ' <<<"$out")"
read -r _ token <<<"$(grep '^TOKEN ' <<<"$out")"
echo "   $event_path (ticket $item)"

echo "== pretix on 127.0.0.1:$webport"
"$VENV/bin/python" -m pretix runserver --noreload "127.0.0.1:$webport" >"$D/pretix.log" 2>&1 &
pids+=($!)
# Until it answers HTTP at all (no event to wait on); /healthcheck/ answers 503 without
# the redis cache this setup does not run.
up=0
for _ in $(seq 1 600); do
  curl -sS -o /dev/null "http://127.0.0.1:$webport/" 2>/dev/null && { up=1; break; }
  kill -0 "${pids[-1]}" || { tail -30 "$D/pretix.log" >&2; exit 1; }
  read -r -t 0.1 <> <(:) || true
done
[ "$up" = 1 ] || { echo "pretix did not answer within 60 s" >&2; tail -30 "$D/pretix.log" >&2; exit 1; }

echo "== a shopper's checkout"
"$VENV/bin/python" "$HERE/check_checkout.py" "http://127.0.0.1:$webport" "$event_path" "$item"

browsers=${PURSE_PRETIX_BROWSERS-chromium firefox}
if [ -n "$browsers" ]; then
  start_pcscd
  cat >"$D/live.json" <<EOF
{"pretix": "http://127.0.0.1:$webport", "eventPath": "$event_path", "item": $item,
 "organizer": "purse", "event": "conf", "token": "$token",
 "pluginConfig": "$D/plugin/shop-plugin.toml", "issuerKeys": "$D/issuer.json",
 "pluginEnv": {"PCSCLITE_CSOCK_NAME": "$SHOP_PCSC_SOCKET"},
 "clearingState": "$D/clearing.json"}
EOF
  locks="${TMPDIR:-/tmp}"
  for browser in $browsers; do
    echo "== the shopper in $browser pays the ticket with the purse card"
    t1=$(secs)
    flock "$locks/purse-vpcd-35963.lock" flock "$locks/purse-vpcd-35964.lock" \
      node "$REPO/extension/e2e/pretix.mjs" --browser "$browser" --live "$D/live.json"
    echo "   $browser: $(took "$t1")"
  done
fi
echo "== live pretix checked ($(took "$t0"))"
if [ "${KEEP:-0}" = 1 ]; then
  echo "pretix http://127.0.0.1:$webport$event_path  shop plugin http://$addr  dir $D"
fi
