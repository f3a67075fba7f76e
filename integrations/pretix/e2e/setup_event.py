"""Creates the live harness's organizer, event and ticket, with the purse provider on.

Run by pretix's own Django (``python -m pretix shell < setup_event.py``) with the shop
plugin's URL, API key and webhook secret in the environment; prints the event's URL path.
"""

import os
from datetime import timedelta
from decimal import Decimal

from django.utils.timezone import now
from django_scopes import scopes_disabled
from pretix.base.models import Event, Organizer, Team

with scopes_disabled():
    org, _ = Organizer.objects.get_or_create(slug="purse", defaults={"name": "Purse Demo"})
    ev, created = Event.objects.get_or_create(
        organizer=org, slug="conf",
        defaults=dict(name="Purse Conference", currency="EUR", live=True,
                      date_from=now() + timedelta(days=30), plugins="pretix_purse"),
    )
    if created:
        ticket = ev.items.create(name="Ticket", default_price=Decimal("12.50"))
        quota = ev.quotas.create(name="Tickets", size=100)
        quota.items.add(ticket)
    ev.settings.set("payment_purse__enabled", True)
    ev.settings.set("payment_purse_plugin_url", os.environ["PURSE_PLUGIN_URL"])
    ev.settings.set("payment_purse_api_key", os.environ["PURSE_API_KEY"])
    ev.settings.set("payment_purse_webhook_secret", os.environ["PURSE_WEBHOOK_SECRET"])
    ev.settings.set("attendee_names_asked", False)
    team, _ = Team.objects.get_or_create(
        organizer=org, name="Purse live check",
        defaults=dict(all_events=True, limit_event_permissions={"event.orders:read": True}))
    token = team.tokens.first() or team.tokens.create(name="live.sh")
    print("TOKEN", token.token)
    print("EVENT", f"/{org.slug}/{ev.slug}/", ev.items.first().pk)
