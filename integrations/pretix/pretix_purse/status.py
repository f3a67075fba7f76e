"""The shop plugin's payment status, applied to pretix's ``OrderPayment``.

Only a status read from the shop plugin's API with the merchant key is trusted (a webhook
body or a return URL only says *when* to look). The mapping:

============================  ====================================================
shop plugin                   pretix
============================  ====================================================
``created``                   unchanged (``created``: the customer may still pay)
``authorized``, ``running``   ``pending`` (a card is paying; it cannot be canceled)
``succeeded``                 ``confirm()`` (the order becomes paid)
``failed``, ``expired``       ``fail()``
``canceled``                  ``canceled``
============================  ====================================================

Applying the same status twice changes nothing: confirm and fail act only from states
that can still move (``created``, ``pending``; a confirm also from ``canceled``, since the
money did move), and pretix locks the payment row while it changes it.
"""

import logging

from pretix.base.models import OrderPayment

from .client import ShopPluginError

logger = logging.getLogger(__name__)

_OPEN = (OrderPayment.PAYMENT_STATE_CREATED, OrderPayment.PAYMENT_STATE_PENDING)


class MismatchError(Exception):
    """The shop plugin's payment is not the one this pretix payment created."""


def sync_payment(payment: OrderPayment) -> str:
    """Reads the payment from the shop plugin and applies its status; returns it.

    Raises :class:`~pretix_purse.client.ShopPluginError` when the plugin cannot say,
    :class:`MismatchError` when its answer does not belong to ``payment``, and pretix's
    ``Quota.QuotaExceededException`` when a paid order can no longer be marked paid.
    """
    info = payment.info_data
    pid = info.get("id")
    if not pid:
        raise ShopPluginError("no_payment", "this payment was never created at the shop plugin")
    data = payment.payment_provider.client().retrieve_payment(pid)
    apply_status(payment, data)
    return data["status"]


def apply_status(payment: OrderPayment, data: dict) -> None:
    info = payment.info_data
    if data.get("id") != info.get("id") or data.get("amount") != info.get("amount"):
        raise MismatchError(f"shop plugin payment {data.get('id')} does not match "
                            f"{payment.full_id}")
    status = data.get("status")
    charged = data.get("charged") if isinstance(data.get("charged"), dict) else {}
    info.update({
        "status": status,
        "card_id": data.get("card_id"),
        "charged_total": charged.get("total"),
        "failure": (data.get("failure") or {}).get("code"),
    })
    if status in ("succeeded", "failed", "canceled", "expired"):
        # Paying is over: nobody needs the secret any more.
        info.pop("client_secret", None)

    if status == "succeeded":
        if charged.get("total") != info.get("amount"):
            # A single payment charges its amount or nothing; anything else is for people.
            logger.error("purse: %s succeeded with %s charged of %s", payment.full_id,
                         charged.get("total"), info.get("amount"))
            _save_info(payment, info)
            payment.order.log_action("pretix_purse.charged_mismatch", {"id": data["id"]})
            return
        if payment.state in _OPEN + (OrderPayment.PAYMENT_STATE_CANCELED,):
            payment.info_data = info
            payment.order.log_action("pretix_purse.succeeded", {"id": data["id"]})
            payment.confirm()  # may raise Quota.QuotaExceededException
        else:
            _save_info(payment, info)
    elif status in ("failed", "expired"):
        _save_info(payment, info)
        if payment.state in _OPEN:
            payment.fail(info=info, log_data={"status": status})
    elif status == "canceled":
        _save_info(payment, info)
        if _move(payment, _OPEN, OrderPayment.PAYMENT_STATE_CANCELED):
            payment.order.log_action("pretix_purse.canceled", {"id": data["id"]})
    elif status in ("authorized", "running"):
        _save_info(payment, info)
        _move(payment, (OrderPayment.PAYMENT_STATE_CREATED,), OrderPayment.PAYMENT_STATE_PENDING)
    else:
        _save_info(payment, info)


def _save_info(payment: OrderPayment, info: dict) -> None:
    payment.info_data = info
    payment.save(update_fields=["info"])


def _move(payment: OrderPayment, from_states, to_state: str) -> bool:
    """Sets the state only if it still is one of ``from_states`` (in one UPDATE): a
    concurrent confirm (the webhook and the return page at once) is never undone."""
    moved = OrderPayment.objects.filter(pk=payment.pk, state__in=from_states).update(
        state=to_state) == 1
    payment.refresh_from_db(fields=["state"])
    return moved
