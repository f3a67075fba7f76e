"""The shop plugin's merchant API, as the pretix server calls it.

``POST /v1/payments`` (with an ``Idempotency-Key``), ``GET /v1/payments/{id}`` and
``POST /v1/payments/{id}/cancel``, with the merchant API key as a bearer token. Errors
come back as :class:`ShopPluginError` with the plugin's stable code; the API key never
appears in an error or a log line.
"""

import re
from dataclasses import dataclass

import requests
import urllib3

# Statuses after which a payment never changes again.
FINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "expired"})
_PAYMENT_ID = re.compile(r"^pay_[0-9a-f]{1,64}$")
TIMEOUT_SECS = 15


class ShopPluginError(Exception):
    """The shop plugin refused a request or could not be reached.

    ``code`` is the plugin's error code (``currency_not_supported``, ...) or one of ours:
    ``unreachable``, ``bad_response``.
    """

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class PurseClient:
    base_url: str
    api_key: str
    timeout: float = TIMEOUT_SECS

    def create_payment(self, idempotency_key: str, body: dict) -> dict:
        return self._call("POST", "/v1/payments", json=body,
                          headers={"Idempotency-Key": idempotency_key})

    def retrieve_payment(self, payment_id: str) -> dict:
        return self._call("GET", f"/v1/payments/{_checked_id(payment_id)}")

    def cancel_payment(self, payment_id: str) -> dict:
        return self._call("POST", f"/v1/payments/{_checked_id(payment_id)}/cancel")

    def _call(self, method: str, path: str, json=None, headers=None) -> dict:
        h = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        h.update(headers or {})
        url = self.base_url.rstrip("/") + path
        try:
            r = requests.request(method, url, json=json, headers=h, timeout=self.timeout,
                                 allow_redirects=False)
        except urllib3.exceptions.HTTPError as e:
            # pretix refuses connections to private addresses unless its configuration
            # allows them (`allow_http_to_private_networks`); say so, not "unreachable".
            if "blocked" in str(e):
                raise ShopPluginError("blocked", f"pretix blocked the connection to "
                                      f"{self.base_url}: a shop plugin on a private address "
                                      "needs `allow_http_to_private_networks = on` in the "
                                      "[pretix] section of pretix.cfg") from None
            raise ShopPluginError("unreachable", f"the shop plugin at {self.base_url} "
                                  f"could not be reached ({type(e).__name__})") from None
        except requests.RequestException as e:
            # The exception text names only the URL, never the headers.
            raise ShopPluginError("unreachable", f"the shop plugin at {self.base_url} "
                                  f"could not be reached ({type(e).__name__})") from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ShopPluginError("bad_response", f"the shop plugin answered {r.status_code} "
                                  "without a JSON object", r.status_code)
        if r.status_code >= 400:
            err = data.get("error") if isinstance(data.get("error"), dict) else {}
            raise ShopPluginError(str(err.get("code") or "http_error"),
                                  str(err.get("message") or f"HTTP {r.status_code}"),
                                  r.status_code)
        if data.get("object") != "payment" or not _PAYMENT_ID.match(str(data.get("id", ""))):
            raise ShopPluginError("bad_response", "the shop plugin's answer is not a payment",
                                  r.status_code)
        return data


def _checked_id(payment_id: str) -> str:
    # Only ids of the plugin's own shape go into a URL path.
    if not isinstance(payment_id, str) or not _PAYMENT_ID.match(payment_id):
        raise ShopPluginError("bad_payment_id", "not a purse payment id")
    return payment_id
