"""execute_payment against a real shop plugin: amounts per currency, the Idempotency-Key,
refusals, cancel; the refund policy."""

from decimal import Decimal

import pytest
import requests
from pretix.base.models import OrderPayment
from pretix.base.payment import PaymentException

from pretix_purse.client import PurseClient
from pretix_purse.payment import NO_REFUND_TEXT, idempotency_key


def remote(plugin, pid):
    return PurseClient(plugin.url, plugin.api_key).retrieve_payment(pid)


def listed(plugin, order_reference):
    r = requests.get(f"{plugin.url}/v1/payments", params={"order_reference": order_reference},
                     headers={"Authorization": f"Bearer {plugin.api_key}"}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]


@pytest.mark.django_db
@pytest.mark.parametrize("currency,total,units", [
    ("JPY", "1500.00", 1500),   # 0 decimals
    ("EUR", "23.00", 2300),     # 2 decimals
    ("KWD", "7.50", 7500),      # 3 decimals
])
def test_execute_payment_creates_the_payment_in_minor_units(
        shop_plugin, make_event, configure, make_order, currency, total, units):
    plugin = shop_plugin(currency)
    event = configure(make_event(currency), plugin)
    order, payment = make_order(event, total)
    url = payment.payment_provider.execute_payment(None, payment)

    payment.refresh_from_db()
    info = payment.info_data
    assert info["id"].startswith("pay_") and info["client_secret"]
    assert url.startswith(f"http://example.com/purseorg/conf/purse/pay/{order.code}/")
    assert payment.state == OrderPayment.PAYMENT_STATE_CREATED
    p = remote(plugin, info["id"])
    assert (p["amount"], p["status"], p["order_reference"]) == (units, "created", payment.full_id)
    assert p["notify_url"] == f"http://example.com/purseorg/conf/purse/webhook/{payment.pk}/"
    assert p["return_url"].startswith("http://example.com/purseorg/conf/purse/return/")


@pytest.mark.django_db
def test_retries_use_the_same_idempotency_key_and_make_one_payment(env):
    plugin, event, order, payment = env
    payment.payment_provider.execute_payment(None, payment)
    payment.refresh_from_db()
    first = payment.info_data
    # The customer comes back (a lost redirect, a reload): the same pretix payment again.
    payment.payment_provider.execute_payment(None, payment)
    payment.refresh_from_db()
    assert payment.info_data["id"] == first["id"]
    assert payment.info_data["client_secret"] == first["client_secret"]
    assert idempotency_key(payment) == f"pretix-purseorg-conf-{order.code}-P-1-{payment.pk}"
    assert [p["id"] for p in listed(plugin, payment.full_id)] == [first["id"]]


@pytest.mark.django_db
def test_a_total_with_more_decimals_than_the_currency_is_refused(
        shop_plugin, make_event, configure, make_order):
    plugin = shop_plugin("JPY")
    event = configure(make_event("JPY"), plugin)
    order, payment = make_order(event, "1500.50")
    with pytest.raises(PaymentException, match="more decimals than the 0 of JPY"):
        payment.payment_provider.execute_payment(None, payment)
    assert listed(plugin, payment.full_id) == []
    payment.refresh_from_db()
    assert payment.info_data == {}


@pytest.mark.django_db
def test_a_currency_the_shop_plugin_refuses(shop_plugin, make_event, configure, make_order):
    plugin = shop_plugin("EUR")
    event = configure(make_event("USD"), plugin)   # the SAM serves EUR only
    order, payment = make_order(event, "10.00")
    with pytest.raises(PaymentException, match="does not take USD"):
        payment.payment_provider.execute_payment(None, payment)
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_FAILED
    assert payment.info_data["error"] == "currency_not_supported"
    assert listed(plugin, payment.full_id) == []


@pytest.mark.django_db
def test_an_unreachable_shop_plugin_leaves_the_payment_open(
        shop_plugin, make_event, configure, make_order):
    # A port nobody listens on: the fault is real, and the customer may retry.
    event = configure(make_event("EUR"), shop_plugin("EUR"), url="http://127.0.0.1:9")
    order, payment = make_order(event)
    with pytest.raises(PaymentException, match="cannot be reached"):
        payment.payment_provider.execute_payment(None, payment)
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CREATED


@pytest.mark.django_db
def test_a_currency_without_minor_unit_table_entry_is_not_offered(
        shop_plugin, make_event, configure):
    event = configure(make_event("XAU"), shop_plugin("EUR"))
    prov = event.get_payment_providers()["purse"]
    assert prov.is_allowed(None, Decimal("10")) is False


@pytest.mark.django_db
def test_cancel_cancels_at_the_shop_plugin_first(env):
    plugin, event, order, payment = env
    prov = payment.payment_provider
    prov.execute_payment(None, payment)
    payment.refresh_from_db()
    prov.cancel_payment(payment)
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CANCELED
    assert remote(plugin, payment.info_data["id"])["status"] == "canceled"


@pytest.mark.django_db
def test_refunds_are_not_offered(env):
    plugin, event, order, payment = env
    prov = payment.payment_provider
    assert prov.payment_refund_supported(payment) is False
    assert prov.payment_partial_refund_supported(payment) is False
    with pytest.raises(PaymentException, match="cannot be reversed onto the card"):
        prov.execute_refund(None)
    assert "manual refund" in str(NO_REFUND_TEXT)


@pytest.mark.django_db
def test_the_settings_keep_secrets_as_pretix_does(env):
    from pretix.base.forms import SecretKeySettingsField

    plugin, event, order, payment = env
    fields = payment.payment_provider.settings_form_fields
    assert isinstance(fields["api_key"], SecretKeySettingsField)
    assert isinstance(fields["webhook_secret"], SecretKeySettingsField)
    assert "_enabled" in fields and "plugin_url" in fields


@pytest.mark.django_db
def test_pretix_private_network_protection_is_explained(env, settings):
    plugin, event, order, payment = env
    settings.ALLOW_HTTP_TO_PRIVATE_NETWORKS = False
    from pretix_purse.client import ShopPluginError

    with pytest.raises(ShopPluginError, match="allow_http_to_private_networks"):
        payment.payment_provider.client().retrieve_payment("pay_0123")
    with pytest.raises(PaymentException, match="cannot be reached"):
        payment.payment_provider.execute_payment(None, payment)
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CREATED
