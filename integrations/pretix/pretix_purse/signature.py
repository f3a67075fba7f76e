"""The shop plugin's webhook signature: ``Purse-Signature: t=<unix>,v1=<hex>``.

``v1`` is HMAC-SHA256 over ``t + "." + raw body`` keyed with the webhook secret (the text
of the plugin's secret file). Several ``v1`` entries may come (a secret being rotated) and
unknown keys are ignored (later schemes). A signature is accepted when its timestamp is
within the tolerance of our clock and any ``v1`` matches, compared in constant time.
"""

import hashlib
import hmac
import re

SIGNATURE_HEADER = "Purse-Signature"
EVENT_ID_HEADER = "Purse-Event-Id"
# How far the signed timestamp may be from our clock: a captured delivery cannot be
# replayed after that.
TOLERANCE_SECS = 300

_DIGITS = re.compile(r"^[0-9]{1,19}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(ValueError):
    """Why a webhook was refused (never contains the secret)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value the shop plugin would send (for tests and tools)."""
    mac = hmac.new(secret.strip().encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str | None, body: bytes, now: float,
           tolerance: int = TOLERANCE_SECS) -> None:
    """Raises :class:`SignatureError` unless ``header`` signs ``body`` with ``secret``."""
    if not secret or not secret.strip():
        raise SignatureError("no webhook secret is configured")
    t = None
    candidates = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and _DIGITS.match(value):
            t = value
        elif key == "v1" and _HEX64.match(value):
            candidates.append(value)
    if t is None or not candidates:
        raise SignatureError("missing or malformed Purse-Signature header")
    if abs(now - int(t)) > tolerance:
        raise SignatureError("the signature's timestamp is outside the tolerance window")
    expected = hmac.new(secret.strip().encode(), t.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    # Compare every candidate (no early exit on a match position).
    matched = False
    for c in candidates:
        matched |= hmac.compare_digest(c, expected)
    if not matched:
        raise SignatureError("the signature does not match")
