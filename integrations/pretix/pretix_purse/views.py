"""The plugin's pages: the payment page, the return page and the webhook receiver.

- ``PayView`` shows the payment page: it loads the shop plugin's checkout.js (its origin
  added to the page's CSP) and ``pay.js``, which hands the payment to the purse extension
  and then goes to the return page.
- ``ReturnView`` reads the status from the shop plugin before showing the order, so an
  order is paid even when the webhook is lost.
- ``WebhookView`` verifies the shop plugin's signature and timestamp, then also reads the
  status from the plugin's API: the body says only which payment to look at.
"""

import json
import logging
import time

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from pretix.base.models import Order, OrderPayment, Quota
from pretix.base.services.locking import LockTimeoutException
from pretix.multidomain.urlreverse import eventreverse

from .client import ShopPluginError
from .payment import PursePayment, url_origin
from .signature import EVENT_ID_HEADER, SIGNATURE_HEADER, SignatureError, verify
from .status import MismatchError, sync_payment

logger = logging.getLogger(__name__)


class _OrderPaymentMixin:
    """Resolves ``<order>/<hash>/<payment>`` URLs: the hash is the order's secret tagged
    with the view and the payment, so a link opens only its own page."""

    url_name = None

    def dispatch(self, request, *args, **kwargs):
        tag = f"plugins:pretix_purse:{self.url_name}:{kwargs['payment']}"
        try:
            self.order = request.event.orders.get_with_secret_check(
                code=kwargs["order"], received_secret=kwargs["hash"], tag=tag)
        except Order.DoesNotExist:
            raise Http404("")
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def payment(self):
        return get_object_or_404(self.order.payments, pk=self.kwargs["payment"],
                                 provider=PursePayment.identifier)

    def order_url(self, paid=False):
        return eventreverse(self.request.event, "presale:event.order", kwargs={
            "order": self.order.code, "secret": self.order.secret,
        }) + ("?paid=yes" if paid else "")


@method_decorator(xframe_options_exempt, "dispatch")
class PayView(_OrderPaymentMixin, View):
    url_name = "pay"

    def get(self, request, *args, **kwargs):
        payment = self.payment
        info = payment.info_data
        if payment.state != OrderPayment.PAYMENT_STATE_CREATED or not info.get("client_secret"):
            return redirect(payment.payment_provider.return_url(payment))
        prov = payment.payment_provider
        api_base = prov.browser_url
        resp = render(request, "pretix_purse/pay.html", {
            "event": request.event,
            "order": self.order,
            "payment": payment,
            "api_base": api_base,
            "payment_id": info["id"],
            "client_secret": info["client_secret"],
            "return_url": prov.return_url(payment),
            "order_url": self.order_url(),
        })
        # pretix's middleware merges this into the page's policy.
        origin = url_origin(api_base)
        resp["Content-Security-Policy"] = f"script-src {origin}; connect-src {origin}"
        return resp


@method_decorator(xframe_options_exempt, "dispatch")
class ReturnView(_OrderPaymentMixin, View):
    url_name = "return"

    def get(self, request, *args, **kwargs):
        payment = self.payment
        if payment.state in (OrderPayment.PAYMENT_STATE_CREATED,
                             OrderPayment.PAYMENT_STATE_PENDING):
            try:
                sync_payment(payment)
            except ShopPluginError as e:
                logger.warning("purse: status of %s unavailable: %s", payment.full_id, e.code)
                messages.warning(request, _(
                    "We could not check your payment yet. If you paid, your order will be "
                    "marked as paid shortly; you will receive an email."))
            except MismatchError:
                logger.error("purse: %s does not match its shop plugin payment",
                             payment.full_id)
                messages.error(request, _("There was a problem with this payment. Please "
                                          "contact the organizer."))
            except LockTimeoutException:
                messages.error(request, _(
                    "We received your payment but could not mark your order as paid as the "
                    "server was too busy. Please check back in a couple of minutes."))
            except Quota.QuotaExceededException:
                messages.error(request, _(
                    "We received your payment but could not mark your order as paid as one "
                    "of your products is sold out. Please contact the organizer."))
        self.order.refresh_from_db()
        payment.refresh_from_db()
        # pretix confirms a payment and marks its order paid in two transactions: when the
        # webhook confirmed it a moment before, confirm() here returned at once and the
        # order may still be on its way to paid. The confirmed payment is the answer.
        paid = (self.order.status == Order.STATUS_PAID
                or payment.state == OrderPayment.PAYMENT_STATE_CONFIRMED)
        return redirect(self.order_url(paid=paid))


@method_decorator(csrf_exempt, "dispatch")
class WebhookView(View):
    """The shop plugin's events for one payment (its ``notify_url``). Answers 2xx once
    the status is applied; anything else makes the plugin deliver again later."""

    def post(self, request, *args, **kwargs):
        prov = PursePayment(request.event)
        body = request.body
        try:
            verify(prov.settings.get("webhook_secret") or "",
                   request.headers.get(SIGNATURE_HEADER), body, time.time())
        except SignatureError as e:
            logger.warning("purse: webhook refused: %s", e)
            return HttpResponse(str(e), status=400, content_type="text/plain")
        try:
            event = json.loads(body)
            pid = event["data"]["object"]["id"]
        except (ValueError, KeyError, TypeError):
            return HttpResponse("not a payment event", status=400, content_type="text/plain")
        payment = OrderPayment.objects.filter(
            order__event=request.event, pk=kwargs["payment"],
            provider=PursePayment.identifier).first()
        if payment is None or payment.info_data.get("id") != pid:
            return HttpResponse("unknown payment", status=404, content_type="text/plain")
        logger.info("purse: event %s (%s) for %s", request.headers.get(EVENT_ID_HEADER),
                    event.get("type"), payment.full_id)
        try:
            sync_payment(payment)
        except (ShopPluginError, LockTimeoutException) as e:
            # Deliver again later, when the plugin answers / the lock is free.
            logger.warning("purse: webhook for %s not applied yet: %s", payment.full_id, e)
            return HttpResponse("try again", status=503, content_type="text/plain")
        except MismatchError:
            logger.error("purse: %s does not match its shop plugin payment", payment.full_id)
            return HttpResponse("payment mismatch", status=409, content_type="text/plain")
        except Quota.QuotaExceededException:
            # The payment is confirmed; the order needs the organizer (pretix logs it).
            pass
        return HttpResponse(status=204)
