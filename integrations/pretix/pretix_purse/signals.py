"""Signal receivers and registries: the provider's registration and the plugin's
log entry texts (shown in the order's history)."""

from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from pretix.base.logentrytypes import OrderLogEntryType, log_entry_types
from pretix.base.signals import register_payment_providers


@receiver(register_payment_providers, dispatch_uid="payment_purse")
def register_payment_provider(sender, **kwargs):
    from .payment import PursePayment

    return PursePayment


@log_entry_types.new_from_dict({
    "pretix_purse.succeeded": _("The purse card payment succeeded."),
    "pretix_purse.canceled": _("The purse card payment was canceled."),
    "pretix_purse.charged_mismatch": _(
        "The purse payment succeeded with another amount than the order's: check it in "
        "the shop plugin (shop-plugin payments list)."),
})
class PurseLogEntryType(OrderLogEntryType):
    pass
