"""Fixtures in pretix's style (organizer, event, order) and a real shop plugin.

``shop_plugin(currency)`` starts ``shop-plugin serve`` on loopback driving a SAM card of
that currency (``purse-issuer sam issue-card``) in its own reader, once per currency and
test session: each SAM card runs in ``sam-emulator`` on a PC/SC service of its own
(``scripts/shop-pcscd``, which needs root or sudo), as a shop's SAM sits in its server's
reader. The binaries come from ``$PURSE_BIN_DIR`` (default: the repository's
``target/debug``; build them with ``cargo build -p shop-plugin -p purse-issuer -p
card-emulators --bins``, as ``scripts/test-pretix`` does).
"""

import os
import re
import secrets
import select
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils.timezone import now
from django_scopes import scopes_disabled
from pretix.base.models import Event, Order, OrderPayment, Organizer

from pretix_purse.amounts import numeric_code

REPO = Path(__file__).resolve().parents[3]
BIN_DIR = Path(os.environ.get("PURSE_BIN_DIR", REPO / "target" / "debug"))
START_TIMEOUT_SECS = 30
SHOP_PCSCD = REPO / "scripts" / "shop-pcscd"
# The shop's pages' origin as pretix's test settings build URLs (SITE_URL).
SHOP_ORIGIN = "http://example.com"


@dataclass
class ShopPlugin:
    url: str
    api_key: str
    webhook_secret: str
    currency: str
    directory: Path


def _run(*args, cwd, env=None):
    out = subprocess.run([str(a) for a in args], cwd=cwd, check=True, capture_output=True,
                         text=True, timeout=60, env=env)
    return out.stdout


def _wait_for(p: subprocess.Popen, stream, pattern: bytes, what: str):
    """Reads ``stream`` of ``p`` until ``pattern`` matches, within START_TIMEOUT_SECS:
    the match and everything read."""
    buf, deadline = b"", time.monotonic() + START_TIMEOUT_SECS
    while True:
        m = re.search(pattern, buf, re.M)
        if m:
            return m, buf
        left = deadline - time.monotonic()
        if left <= 0 or p.poll() is not None:
            pytest.fail(f"{what} did not start: {buf.decode(errors='replace')}")
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                pytest.fail(f"{what} ended before it was ready: {buf.decode(errors='replace')}")
            buf += chunk


def _sam_card(d: Path, sam_id: str, currency: str, procs: list) -> dict:
    """The SAM card in its own reader: ``{"reader": R, "env": the shop's environment}``."""
    issuer = BIN_DIR / "purse-issuer"
    _run(issuer, "sam", "issue-card", "--keys", "issuer.json", "--sam-id", sam_id,
         "--currency", numeric_code(currency), "--key-version", "1", "--accept", "1",
         "--out", "sam-card.json", cwd=d)
    log = open(d / "shop-pcscd.log", "ab")
    p = subprocess.Popen([str(SHOP_PCSCD), str(d / "pcsc"), "--sam", str(d / "sam-card.json"),
                          "--sam-emulator", str(BIN_DIR / "sam-emulator")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
    procs.append(p)
    m, _ = _wait_for(
        p, p.stdout,
        rb"^shop pcscd ready: PCSCLITE_CSOCK_NAME=(\S+) port=\d+ reader=(.+) pid=\d+$",
        f"the SAM card's reader (log {d / 'shop-pcscd.log'})")
    # The plugin's PC/SC service is the shop's own: its SAM's reader is there.
    return {"reader": m.group(2).decode(),
            "env": dict(os.environ, PCSCLITE_CSOCK_NAME=m.group(1).decode())}


def _start(currency: str, ttl_secs: int, root: Path, procs: list) -> ShopPlugin:
    for b in ("shop-plugin", "purse-issuer", "sam-emulator"):
        if not (BIN_DIR / b).exists():
            pytest.fail(f"{BIN_DIR / b} is missing: run `cargo build -p shop-plugin "
                        "-p purse-issuer -p card-emulators --bins` (or scripts/test-pretix)")
    d = Path(tempfile.mkdtemp(prefix=f"plugin-{currency}-{ttl_secs}-", dir=root))
    d.chmod(0o700)
    issuer, plugin = BIN_DIR / "purse-issuer", BIN_DIR / "shop-plugin"
    _run(issuer, "keys", "add", "--keys", "issuer.json", "--kv", "1", cwd=d)
    sam_id = "5a0000000000%04x" % (len(procs) + 0xE0)
    sam = _sam_card(d, sam_id, currency, procs)
    out = _run(plugin, "init", "--sam-reader", sam["reader"], "--listen", "127.0.0.1:0",
               "--allowed-origin", SHOP_ORIGIN, cwd=d, env=sam["env"])
    key = re.search(r"^(sk_\S+)$", out, re.M)
    assert key, "shop-plugin init printed no API key"
    conf = d / "shop-plugin.toml"
    conf.write_text(re.sub(r"client_secret_ttl_secs = \d+",
                           f"client_secret_ttl_secs = {ttl_secs}", conf.read_text()))
    env = dict(sam["env"], RUST_LOG="warn,shop_plugin=info", NO_COLOR="1")
    p = subprocess.Popen([str(plugin), "serve", "--config", str(conf)], cwd=d, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    procs.append(p)
    # The server logs `listening on ADDR` once it serves: read its log until then.
    m, buf = _wait_for(p, p.stderr, rb"listening on (\S+)", "shop-plugin serve")
    addr = m.group(1).decode()
    log = open(d / "serve.log", "ab")
    log.write(buf)
    # Keep draining its log so that it never blocks on a full pipe.
    threading.Thread(target=shutil.copyfileobj, args=(p.stderr, log), daemon=True).start()
    secret = (d / "webhook-secret").read_text().strip()
    return ShopPlugin(f"http://{addr}", key.group(1), secret, currency, d)


@pytest.fixture(scope="session")
def shop_plugin(tmp_path_factory):
    """``shop_plugin(currency, ttl_secs=1800)``: a running shop plugin of that currency."""
    root = tmp_path_factory.mktemp("shop-plugins")
    procs, started = [], {}

    def get(currency="EUR", ttl_secs=1800):
        key = (currency, ttl_secs)
        if key not in started:
            started[key] = _start(currency, ttl_secs, root, procs)
        return started[key]

    yield get
    # Each plugin before its SAM's reader (started just before it).
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(autouse=True)
def shop_plugin_on_loopback(settings):
    # The shop plugin runs on 127.0.0.1 here: pretix blocks requests to private networks
    # unless pretix.cfg says `allow_http_to_private_networks = on` (as an operator with
    # the plugin beside pretix sets it).
    settings.ALLOW_HTTP_TO_PRIVATE_NETWORKS = True


@pytest.fixture(autouse=True)
def no_scopes():
    # pretix scopes queries by organizer; tests look across them, as pretix's own do.
    with scopes_disabled():
        yield


@pytest.fixture
def organizer(db):
    return Organizer.objects.create(name="Purse Org", slug="purseorg")


@pytest.fixture
def make_event(organizer):
    def make(currency="EUR", slug="conf"):
        return Event.objects.create(
            organizer=organizer, name="Purse Conference", slug=slug, currency=currency,
            date_from=now() + timedelta(days=10), live=True,
            plugins="pretix_purse",
        )
    return make


@pytest.fixture
def configure():
    """Points an event's purse provider at a shop plugin (as the settings form would)."""
    def conf(event, plugin, url=None):
        event.settings.set("payment_purse__enabled", True)
        event.settings.set("payment_purse_plugin_url", url or plugin.url)
        event.settings.set("payment_purse_api_key", plugin.api_key)
        event.settings.set("payment_purse_webhook_secret", plugin.webhook_secret)
        return event
    return conf


@pytest.fixture
def make_order():
    """An order of ``total`` with a ticket and an open purse payment of that amount."""
    def make(event, total="23.00", code=None):
        # The shop plugins live for the whole session: every order gets a fresh code.
        code = code or "T" + secrets.token_hex(4).upper()
        total = Decimal(total)
        ticket = event.items.create(name="Ticket", default_price=total)
        quota = event.quotas.create(name="Tickets", size=10)
        quota.items.add(ticket)
        order = Order.objects.create(
            code=code, event=event, email="buyer@example.org", status=Order.STATUS_PENDING,
            datetime=now(), expires=now() + timedelta(days=10), total=total,
            sales_channel=event.organizer.sales_channels.get(identifier="web"),
        )
        order.positions.create(item=ticket, price=total)
        payment = order.payments.create(provider="purse", amount=total,
                                        state=OrderPayment.PAYMENT_STATE_CREATED)
        return order, payment
    return make


@pytest.fixture
def env(shop_plugin, make_event, configure, make_order):
    """The usual case: an EUR event, its shop plugin, an order of 23.00 EUR."""
    plugin = shop_plugin("EUR")
    event = configure(make_event("EUR"), plugin)
    order, payment = make_order(event)
    return plugin, event, order, payment
