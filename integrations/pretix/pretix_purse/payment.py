"""The pretix payment provider: purse card payments through the shop's shop plugin.

pretix creates an ``OrderPayment``; :meth:`PursePayment.execute_payment` creates the
matching payment in the shop plugin (pretix's payment id as the ``Idempotency-Key``) and
sends the shopper to the payment page (``views.PayView``), where checkout.js hands the
payment to the purse browser extension. The outcome comes from the shop plugin: its
signed webhook, or the return page, both of which read the status from the plugin's API
(``status.sync_payment``) before pretix confirms or fails anything.
"""

import logging
from collections import OrderedDict
from urllib.parse import urlsplit

from django import forms
from django.http import HttpRequest
from django.template.loader import get_template
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from pretix.base.forms import SecretKeySettingsField
from pretix.base.models import OrderPayment, OrderRefund
from pretix.base.payment import BasePaymentProvider, PaymentException
from pretix.multidomain.urlreverse import eventreverse_absolute

from .amounts import AmountError, from_minor_units, numeric_code, to_minor_units
from .client import FINAL_STATUSES, PurseClient, ShopPluginError

logger = logging.getLogger(__name__)

NO_REFUND_TEXT = _(
    "A purse payment cannot be reversed onto the card: refund the customer another way "
    "(e.g. a bank transfer) and record it as a manual refund in pretix."
)
# What the shop plugin's errors mean for the customer; other codes get a generic text.
_CREATE_ERRORS = {
    "currency_not_supported": _(
        "This shop's purse service does not take {currency}. Please choose another payment "
        "method."
    ),
    "unreachable": _(
        "The purse payment service cannot be reached right now. Please try again in a few "
        "minutes."
    ),
    "blocked": _(
        "The purse payment service cannot be reached right now. Please try again in a few "
        "minutes."
    ),
}
# Faults that may pass: the payment stays open, so a retry uses the same Idempotency-Key.
_TRANSIENT = ("unreachable", "blocked", "bad_response")


def idempotency_key(payment: OrderPayment) -> str:
    """The key of ``payment`` at the shop plugin: pretix's payment id, made unique across
    the organizers and events (and pretix databases: the row id) one plugin may serve."""
    ev = payment.order.event
    return f"pretix-{ev.organizer.slug}-{ev.slug}-{payment.full_id}-{payment.pk}"


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL, for the page's CSP."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


class PursePayment(BasePaymentProvider):
    identifier = "purse"
    verbose_name = _("Purse card")
    public_name = _("Purse card")
    abort_pending_allowed = False
    execute_payment_needs_user = True

    # -- settings ------------------------------------------------------------------------

    @property
    def settings_form_fields(self):
        fields = [
            ("plugin_url", forms.URLField(
                label=_("Shop plugin URL"),
                help_text=_("Where pretix's server reaches `shop-plugin serve`, e.g. "
                            "https://pay.shop.example"),
                required=True,
            )),
            ("public_url", forms.URLField(
                label=_("Shop plugin URL for browsers"),
                help_text=_("Where shoppers' browsers load checkout.js from; leave empty "
                            "when it is the URL above."),
                required=False,
            )),
            ("api_key", SecretKeySettingsField(
                label=_("Merchant API key"),
                help_text=_("The sk_… key printed by `shop-plugin init`."),
                required=True,
            )),
            ("webhook_secret", SecretKeySettingsField(
                label=_("Webhook signing secret"),
                help_text=_("The content of the shop plugin's webhook secret file "
                            "(whsec_…)."),
                required=True,
            )),
        ]
        return OrderedDict(fields + list(super().settings_form_fields.items()))

    def settings_content_render(self, request):
        return format_html(
            "<p>{}</p><p>{}</p>",
            _("Customers pay with their purse chip card through the purse browser "
              "extension. Add this shop's origin to the shop plugin's allowed_origins."),
            NO_REFUND_TEXT,
        )

    def client(self) -> PurseClient:
        return PurseClient(base_url=self.settings.get("plugin_url") or "",
                           api_key=self.settings.get("api_key") or "")

    @property
    def browser_url(self) -> str:
        return (self.settings.get("public_url") or self.settings.get("plugin_url") or "").rstrip("/")

    @property
    def is_enabled(self) -> bool:
        return bool(super().is_enabled and self.settings.get("plugin_url")
                    and self.settings.get("api_key") and self.settings.get("webhook_secret"))

    def is_allowed(self, request: HttpRequest, total=None) -> bool:
        try:
            numeric_code(self.event.currency)
        except AmountError:
            return False
        return super().is_allowed(request, total)

    # -- checkout ------------------------------------------------------------------------

    def payment_form_render(self, request, total=None, order=None) -> str:
        return format_html("<p>{}</p>", _(
            "Pay with your purse chip card: you need the purse browser extension and your "
            "card in its reader. After you confirm the order, the extension shows the amount "
            "and asks you to pay."))

    def checkout_confirm_render(self, request, order=None, info_data=None) -> str:
        return format_html("<p>{}</p>", _(
            "After you confirm the order, the purse browser extension asks you to pay with "
            "your card."))

    def payment_is_valid_session(self, request) -> bool:
        return True

    def payment_prepare(self, request, payment):
        return True

    def execute_payment(self, request: HttpRequest, payment: OrderPayment):
        currency = self.event.currency
        try:
            amount = to_minor_units(payment.amount, currency)
            currency_code = numeric_code(currency)
        except AmountError as e:
            raise PaymentException(_("This amount cannot be paid with a purse card: {reason}")
                                   .format(reason=str(e)))
        order = payment.order
        body = {
            "amount": amount,
            "currency": currency_code,
            "description": f"{self.event.name} – {order.code}"[:1000],
            "order_reference": payment.full_id,
            "notify_url": eventreverse_absolute(self.event, "plugins:pretix_purse:webhook",
                                                kwargs={"payment": payment.pk}),
            "return_url": self.return_url(payment),
        }
        try:
            data = self.client().create_payment(idempotency_key(payment), body)
        except ShopPluginError as e:
            logger.warning("purse: creating %s failed: %s", payment.full_id, e)
            text = _CREATE_ERRORS.get(e.code, _(
                "The purse payment could not be started ({code}). Please choose another "
                "payment method or contact the organizer."))
            if e.code not in _TRANSIENT and (e.status or 0) < 500:
                # A refusal is final for this payment; a fault may pass, so the customer can
                # retry the same payment (same Idempotency-Key, no second payment).
                payment.fail(info={"error": e.code, "message": e.message}, send_mail=False)
            raise PaymentException(text.format(currency=currency, code=e.code))
        if data.get("amount") != amount or str(data.get("currency")) not in (currency_code,
                                                                                currency):
            # Never take a payment for another amount than the order's.
            payment.fail(info={"error": "amount_mismatch", "id": data.get("id")},
                         send_mail=False)
            raise PaymentException(_("The purse payment service answered with another amount."))
        info = payment.info_data
        info.update({
            "id": data["id"],
            "status": data.get("status"),
            "amount": amount,
            "currency": currency,
        })
        # The client secret authorises paying this payment only; the payment page hands
        # it to the shopper's extension. The plugin shows it only at creation (or replay).
        if data.get("client_secret"):
            info["client_secret"] = data["client_secret"]
        payment.info_data = info
        payment.save(update_fields=["info"])
        return self.pay_url(payment)

    def _order_urls(self, payment, name):
        order = payment.order
        tag = f"plugins:pretix_purse:{name}:{payment.pk}"
        return eventreverse_absolute(self.event, f"plugins:pretix_purse:{name}", kwargs={
            "order": order.code,
            "hash": order.tagged_secret(tag),
            "payment": payment.pk,
        })

    def pay_url(self, payment):
        return self._order_urls(payment, "pay")

    def return_url(self, payment):
        return self._order_urls(payment, "return")

    def payment_pending_render(self, request, payment) -> str:
        template = get_template("pretix_purse/pending.html")
        can_pay = (payment.state == OrderPayment.PAYMENT_STATE_CREATED
                   and payment.info_data.get("id"))
        return template.render({
            "payment": payment,
            "pay_url": self.pay_url(payment) if can_pay else None,
        })

    # -- backend -------------------------------------------------------------------------

    def payment_control_render(self, request, payment) -> str:
        info = payment.info_data
        charged = None
        if info.get("charged_total") is not None:
            try:
                charged = from_minor_units(info["charged_total"], self.event.currency)
            except (AmountError, TypeError, ValueError):
                charged = None
        template = get_template("pretix_purse/control.html")
        return template.render({
            "payment": payment,
            "info": info,
            "charged": charged,
            "currency": self.event.currency,
            "no_refund_text": NO_REFUND_TEXT,
        })

    def payment_control_render_short(self, payment) -> str:
        return payment.info_data.get("id", "")

    def payment_presale_render(self, payment) -> str:
        return str(self.public_name)

    def api_payment_details(self, payment):
        info = payment.info_data
        return {
            "purse_payment_id": info.get("id"),
            "status": info.get("status"),
            "card_id": info.get("card_id"),
        }

    def matching_id(self, payment):
        return payment.info_data.get("id")

    def shred_payment_info(self, obj):
        if not obj.info:
            return
        info = obj.info_data
        for k in ("client_secret", "card_id"):
            if k in info:
                info[k] = "█"
        info["_shredded"] = True
        obj.info_data = info
        obj.save(update_fields=["info"])

    # -- cancel and refunds ----------------------------------------------------------------

    def cancel_payment(self, payment: OrderPayment):
        """Cancels at the shop plugin first: once a card has begun paying it refuses, and
        the pretix payment stays as it is (the webhook will settle it)."""
        pid = payment.info_data.get("id")
        if pid and payment.info_data.get("status") not in FINAL_STATUSES:
            try:
                self.client().cancel_payment(pid)
            except ShopPluginError as e:
                if e.code == "payment_not_cancelable":
                    raise PaymentException(_(
                        "The customer's card has already started paying; this payment "
                        "cannot be canceled any more."))
                if e.code != "not_found":
                    raise PaymentException(_(
                        "The purse payment could not be canceled ({code}).").format(code=e.code))
        super().cancel_payment(payment)

    def payment_refund_supported(self, payment: OrderPayment) -> bool:
        return False

    def payment_partial_refund_supported(self, payment: OrderPayment) -> bool:
        return False

    def execute_refund(self, refund: OrderRefund):
        raise PaymentException(NO_REFUND_TEXT)

    def refund_control_render(self, request, refund) -> str:
        return format_html("<p>{}</p>", NO_REFUND_TEXT)
