"""The Django app of the plugin, with the metadata pretix shows in its plugin list."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from . import __version__


class PluginApp(AppConfig):
    name = "pretix_purse"
    verbose_name = "Purse card payments"
    default = True

    class PretixPluginMeta:
        name = _("Purse card")
        author = "The purse project"
        description = _(
            "Accept payments with electronic-purse chip cards: customers pay with their "
            "card through the purse browser extension, and the shop's purse shop plugin "
            "confirms each payment."
        )
        category = "PAYMENT"
        visible = True
        version = __version__
        compatibility = "pretix>=2025.1.0"
        settings_links = [
            ((_("Payment"), _("Purse card")), "control:event.settings.payment.provider",
             {"provider": "purse"}),
        ]

    def ready(self):
        from . import signals  # noqa: F401 (connects the receivers)
