"""The mapping of the shop plugin's statuses onto pretix's payment states.

The card-paid statuses (authorized, running, succeeded, failed) need a purse card, which
the end-to-end test brings; here the payment object is the real shop plugin's answer for
the payment (created), with the status it would have after the card."""

from datetime import timedelta

import pytest
from django.utils.timezone import now
from pretix.base.models import Order, OrderPayment, Quota

from pretix_purse.client import PurseClient
from pretix_purse.status import MismatchError, apply_status


@pytest.fixture
def remote(env):
    plugin, event, order, payment = env
    payment.payment_provider.execute_payment(None, payment)
    payment.refresh_from_db()
    data = PurseClient(plugin.url, plugin.api_key).retrieve_payment(payment.info_data["id"])
    assert data["status"] == "created"

    def after(status, charged=None, **more):
        d = dict(data, status=status, **more)
        if charged is not None:
            d["charged"] = {"total": charged, "units": 1 if charged else 0}
        return d
    return after


def confirmed_logs(order):
    return order.all_logentries().filter(
        action_type="pretix.event.order.payment.confirmed").count()


@pytest.mark.django_db
def test_succeeded_confirms_once(env, remote):
    plugin, event, order, payment = env
    for _ in range(3):
        apply_status(payment, remote("succeeded", charged=2300, card_id="c1"))
        payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CONFIRMED
    assert order.status == Order.STATUS_PAID
    assert payment.info_data["card_id"] == "c1"
    assert "client_secret" not in payment.info_data
    assert confirmed_logs(order) == 1


@pytest.mark.django_db
def test_authorized_then_succeeded(env, remote):
    plugin, event, order, payment = env
    apply_status(payment, remote("authorized"))
    assert payment.state == OrderPayment.PAYMENT_STATE_PENDING
    apply_status(payment, remote("created"))   # an older event late: no regress
    assert payment.state == OrderPayment.PAYMENT_STATE_PENDING
    apply_status(payment, remote("succeeded", charged=2300))
    order.refresh_from_db()
    assert order.status == Order.STATUS_PAID


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["failed", "expired"])
def test_failed_and_expired_fail(env, remote, status):
    plugin, event, order, payment = env
    apply_status(payment, remote(status, failure={"code": "card_declined", "message": "x"}))
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_FAILED
    order.refresh_from_db()
    assert order.status == Order.STATUS_PENDING   # the customer may pay another way


@pytest.mark.django_db
def test_terminal_states_never_regress(env, remote):
    plugin, event, order, payment = env
    apply_status(payment, remote("succeeded", charged=2300))
    for later in ("failed", "canceled", "expired", "authorized"):
        apply_status(payment, remote(later))
        payment.refresh_from_db()
        assert payment.state == OrderPayment.PAYMENT_STATE_CONFIRMED


@pytest.mark.django_db
def test_a_card_that_paid_a_canceled_pretix_payment_is_still_confirmed(env, remote):
    # The money moved: the order's record must show it.
    plugin, event, order, payment = env
    payment.state = OrderPayment.PAYMENT_STATE_CANCELED
    payment.save()
    apply_status(payment, remote("succeeded", charged=2300))
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CONFIRMED


@pytest.mark.django_db
def test_another_payment_or_amount_is_refused(env, remote):
    plugin, event, order, payment = env
    with pytest.raises(MismatchError):
        apply_status(payment, remote("succeeded", charged=2300, id="pay_0000000000000000"))
    with pytest.raises(MismatchError):
        apply_status(payment, remote("succeeded", charged=1, amount=1))
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CREATED


@pytest.mark.django_db
def test_succeeded_with_another_charge_is_left_to_people(env, remote):
    plugin, event, order, payment = env
    apply_status(payment, remote("succeeded", charged=2299))
    payment.refresh_from_db()
    assert payment.state == OrderPayment.PAYMENT_STATE_CREATED
    assert order.all_logentries().filter(action_type="pretix_purse.charged_mismatch").exists()


@pytest.mark.django_db
def test_paid_after_the_order_expired_and_sold_out(env, remote):
    plugin, event, order, payment = env
    order.status = Order.STATUS_EXPIRED
    order.expires = now() - timedelta(days=1)
    order.save()
    event.quotas.update(size=0)
    with pytest.raises(Quota.QuotaExceededException):
        apply_status(payment, remote("succeeded", charged=2300))
    payment.refresh_from_db()
    order.refresh_from_db()
    # pretix's way: the payment is recorded, the order waits for the organizer
    assert payment.state == OrderPayment.PAYMENT_STATE_CONFIRMED
    assert order.status == Order.STATUS_EXPIRED
