"""The webhook receiver and the return page against a real shop plugin: signature and
timestamp window, the status read from the plugin (never from the body), repeats."""

import json
import time

import pytest
from pretix.base.models import Order, OrderPayment

from pretix_purse.client import PurseClient
from pretix_purse.signature import sign


def started(payment):
    payment.payment_provider.execute_payment(None, payment)
    payment.refresh_from_db()
    return payment.info_data["id"]


def event_body(plugin, pid, kind, **override):
    obj = PurseClient(plugin.url, plugin.api_key).retrieve_payment(pid)
    obj.update(override)
    return json.dumps({"id": "evt_" + pid[4:], "object": "event", "type": kind,
                       "created": int(time.time()), "data": {"object": obj}}).encode()


def post(client, payment, body, secret, t=None):
    t = int(time.time()) if t is None else t
    return client.post(f"/purseorg/conf/purse/webhook/{payment.pk}/", body,
                       content_type="application/json",
                       HTTP_PURSE_SIGNATURE=sign(secret, t, body),
                       HTTP_PURSE_EVENT_ID="evt_test")


def logged(order, action):
    return order.all_logentries().filter(action_type=action).count()


@pytest.mark.django_db
def test_a_canceled_payment_is_canceled_once_however_often_the_webhook_comes(env, client):
    plugin, event, order, payment = env
    pid = started(payment)
    PurseClient(plugin.url, plugin.api_key).cancel_payment(pid)
    body = event_body(plugin, pid, "payment.canceled")
    for _ in range(3):  # at-least-once delivery: the same event again
        assert post(client, payment, body, plugin.webhook_secret).status_code == 204
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CANCELED
    assert payment.info_data["status"] == "canceled"
    assert "client_secret" not in payment.info_data
    assert logged(order, "pretix_purse.canceled") == 1


@pytest.mark.django_db
def test_an_expired_payment_fails(shop_plugin, make_event, configure, make_order, client):
    plugin = shop_plugin("EUR", ttl_secs=0)   # every payment expires at once
    event = configure(make_event("EUR"), plugin)
    order, payment = make_order(event)
    pid = started(payment)
    body = event_body(plugin, pid, "payment.expired")
    assert post(client, payment, body, plugin.webhook_secret).status_code == 204
    assert post(client, payment, body, plugin.webhook_secret).status_code == 204
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_FAILED
    assert payment.info_data["status"] == "expired"
    assert logged(order, "pretix.event.order.payment.failed") == 1


@pytest.mark.django_db
def test_the_body_is_never_trusted_for_the_status(env, client):
    # Even correctly signed, "succeeded" in the body changes nothing while the shop
    # plugin's API says the payment waits for a card.
    plugin, event, order, payment = env
    pid = started(payment)
    body = event_body(plugin, pid, "payment.succeeded", status="succeeded",
                      charged={"total": 2300, "units": 1})
    assert post(client, payment, body, plugin.webhook_secret).status_code == 204
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CREATED
    assert order.status == Order.STATUS_PENDING


@pytest.mark.django_db
@pytest.mark.parametrize("forgery", ["wrong secret", "stale", "future", "body changed",
                                     "no header"])
def test_forged_or_stale_webhooks_are_refused(env, client, forgery):
    plugin, event, order, payment = env
    pid = started(payment)
    PurseClient(plugin.url, plugin.api_key).cancel_payment(pid)
    body = event_body(plugin, pid, "payment.canceled")
    url = f"/purseorg/conf/purse/webhook/{payment.pk}/"
    now = int(time.time())
    if forgery == "wrong secret":
        r = post(client, payment, body, "whsec_not_the_shops_secret_at_all")
    elif forgery == "stale":
        r = post(client, payment, body, plugin.webhook_secret, t=now - 301)
    elif forgery == "future":
        r = post(client, payment, body, plugin.webhook_secret, t=now + 301)
    elif forgery == "body changed":
        r = client.post(url, body.replace(b'"canceled"', b'"succeeded"'),
                        content_type="application/json",
                        HTTP_PURSE_SIGNATURE=sign(plugin.webhook_secret, now, body))
    else:
        r = client.post(url, body, content_type="application/json")
    assert r.status_code == 400
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CREATED   # nothing applied


@pytest.mark.django_db
def test_a_webhook_for_another_payment_is_not_applied(env, make_order, client):
    plugin, event, order, payment = env
    pid = started(payment)
    other_order, other = make_order(event)
    body = event_body(plugin, pid, "payment.created")
    assert post(client, other, body, plugin.webhook_secret).status_code == 404
    r = client.post("/purseorg/conf/purse/webhook/999999/", body,
                    content_type="application/json",
                    HTTP_PURSE_SIGNATURE=sign(plugin.webhook_secret, int(time.time()), body))
    assert r.status_code == 404


@pytest.mark.django_db
def test_the_plugin_down_makes_the_webhook_come_again(env, client):
    plugin, event, order, payment = env
    pid = started(payment)
    body = event_body(plugin, pid, "payment.created")
    event.settings.set("payment_purse_plugin_url", "http://127.0.0.1:9")  # nobody there
    assert post(client, payment, body, plugin.webhook_secret).status_code == 503


@pytest.mark.django_db
def test_the_return_page_reads_the_status_without_a_webhook(env, client):
    plugin, event, order, payment = env
    pid = started(payment)
    PurseClient(plugin.url, plugin.api_key).cancel_payment(pid)   # no webhook arrives
    r = client.get(payment.payment_provider.return_url(payment))
    assert r.status_code == 302
    assert r["Location"] == f"/purseorg/conf/order/{order.code}/{order.secret}/"
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CANCELED


@pytest.mark.django_db
def test_return_and_pay_pages_need_the_order_secret(env, client):
    plugin, event, order, payment = env
    started(payment)
    for name in ("return", "pay"):
        url = f"/purseorg/conf/purse/{name}/{order.code}/{'0' * 64}/{payment.pk}/"
        assert client.get(url).status_code == 404
    # a page's link opens only its own page
    pay = payment.payment_provider.pay_url(payment).replace("http://example.com", "")
    assert client.get(pay.replace("/pay/", "/return/")).status_code == 404


@pytest.mark.django_db
def test_the_payment_page_embeds_checkout_js(env, client):
    plugin, event, order, payment = env
    pid = started(payment)
    r = client.get(payment.payment_provider.pay_url(payment))
    assert r.status_code == 200
    html = r.content.decode()
    assert f'<script src="{plugin.url}/v1/checkout.js"></script>' in html
    assert f'data-payment-id="{pid}"' in html
    assert f'data-client-secret="{payment.info_data["client_secret"]}"' in html
    assert "pretix_purse/pay.js" in html
    csp = r["Content-Security-Policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert plugin.url in script_src


@pytest.mark.django_db
def test_the_payment_page_of_an_ended_payment_goes_to_the_return_page(env, client):
    plugin, event, order, payment = env
    started(payment)
    payment.payment_provider.cancel_payment(payment)
    r = client.get(payment.payment_provider.pay_url(payment))
    assert r.status_code == 302 and "/purse/return/" in r["Location"]


@pytest.mark.django_db
def test_the_return_page_counts_a_confirmed_payment_while_its_order_is_being_marked(env, client):
    # pretix confirms a payment and marks its order paid in two transactions; the webhook
    # confirming it first leaves the return page this state for a moment.
    plugin, event, order, payment = env
    started(payment)
    OrderPayment.objects.filter(pk=payment.pk).update(state=OrderPayment.PAYMENT_STATE_CONFIRMED)
    order.refresh_from_db()
    assert order.status == Order.STATUS_PENDING
    r = client.get(payment.payment_provider.return_url(payment))
    assert r.status_code == 302
    assert r["Location"] == f"/purseorg/conf/order/{order.code}/{order.secret}/?paid=yes"
