# shellcheck shell=bash
# Sourceable: the shop's SAM card in its own reader for the scripts that start a shop
# plugin (contract-test, the demo, the live pretix run). scripts/shop-pcscd runs the
# shop's own PC/SC service with the SAM card (sam-emulator) in its reader; this waits for
# its ready line and says where it is. The shared pcscd stays the shopper's.
#
#   . scripts/lib/shop-sam.sh
#   start_shop_sam DIR SAM_CARD_FILE SAM_EMULATOR_BIN   # sets the three variables below
#   PCSCLITE_CSOCK_NAME="$SHOP_PCSC_SOCKET" shop-plugin init --sam-reader "$SHOP_SAM_READER" ...
#   stop_shop_sam                                        # also safe when none started
#
# Pass SHOP_PCSC_SOCKET only to the shop's processes: a browser (and the native host it
# starts) given it would see the shop's readers instead of the shopper's.

SHOP_SAM_PID=""
SHOP_SAM_READER=""
SHOP_PCSC_SOCKET=""

start_shop_sam() {
  local dir=$1 card=$2 bin=$3 ready=""
  mkdir -p "$dir"
  rm -f "$dir/ready"
  mkfifo "$dir/ready"
  "$(dirname "${BASH_SOURCE[0]}")/../shop-pcscd" "$dir/pcsc" --sam "$card" --sam-emulator "$bin" \
    >"$dir/ready" 2>"$dir/shop-pcscd.log" &
  SHOP_SAM_PID=$!
  read -r -t 60 ready <"$dir/ready" || true
  case "$ready" in
    "shop pcscd ready: "*) ;;
    *)
      echo "the SAM card ($card) did not come up in its reader:" >&2
      cat "$dir/shop-pcscd.log" >&2
      return 1
      ;;
  esac
  # "shop pcscd ready: PCSCLITE_CSOCK_NAME=S port=P reader=R pid=N"
  ready=${ready#*PCSCLITE_CSOCK_NAME=}
  SHOP_PCSC_SOCKET=${ready%% *}
  ready=${ready#*reader=}
  SHOP_SAM_READER=${ready% pid=*}
}

# Stops the SAM emulator and the shop's pcscd (scripts/shop-pcscd does both on SIGTERM).
stop_shop_sam() {
  [ -n "$SHOP_SAM_PID" ] || return 0
  kill -TERM "$SHOP_SAM_PID" 2>/dev/null || true
  wait "$SHOP_SAM_PID" 2>/dev/null || true
  SHOP_SAM_PID=""
}
