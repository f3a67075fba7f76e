"""A shopper's requests against the live pretix: put the ticket in the cart, give an
email address, and check that the payment step offers the purse card.

Usage: check_checkout.py BASE_URL EVENT_PATH ITEM_ID
"""

import re
import sys

import requests

base, path, item = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
s = requests.Session()
ev = base + path


def csrf(html):
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


r = s.get(ev, timeout=30)
r.raise_for_status()
r = s.post(ev + "cart/add", data={"csrfmiddlewaretoken": csrf(r.text), f"item_{item}": "1"},
           headers={"Referer": ev}, timeout=30)
r.raise_for_status()
r = s.get(ev + "checkout/start", timeout=30)
r.raise_for_status()
if "/checkout/questions/" in r.url:
    r = s.post(r.url, data={"csrfmiddlewaretoken": csrf(r.text), "email": "buyer@example.org",
                            "email_repeat": "buyer@example.org"},
               headers={"Referer": r.url}, timeout=30)
    r.raise_for_status()
assert "/checkout/payment/" in r.url, f"expected the payment step, got {r.url}"
assert 'value="purse"' in r.text, "the payment step does not offer the purse card"
assert "Purse card" in r.text
print(f"checkout offers the purse card: {r.url}")
