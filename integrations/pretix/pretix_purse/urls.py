"""The plugin's URLs, under each event's storefront (only where the plugin is active)."""

from django.urls import include, path
from pretix.multidomain import event_path

from .views import PayView, ReturnView, WebhookView

event_patterns = [
    path("purse/", include([
        event_path("webhook/<int:payment>/", WebhookView.as_view(), name="webhook",
                   require_live=False),
        event_path("pay/<str:order>/<str:hash>/<int:payment>/", PayView.as_view(),
                   name="pay", require_live=False),
        event_path("return/<str:order>/<str:hash>/<int:payment>/", ReturnView.as_view(),
                   name="return", require_live=False),
    ])),
]
