"""The webhook signature check: HMAC-SHA256 over "t.body", timestamp window."""

import pytest

from pretix_purse.signature import SignatureError, sign, verify

SECRET = "whsec_0123456789abcdefghijklmnopqrstuv"
BODY = b'{"id":"evt_1","type":"payment.succeeded"}'
NOW = 1_800_000_000


def test_a_signature_of_the_shop_plugin_is_accepted():
    verify(SECRET, sign(SECRET, NOW, BODY), BODY, NOW)
    # several v1 (a secret being rotated) and unknown keys (later schemes)
    other = sign("whsec_another_secret_of_the_shop", NOW, BODY).split(",")[1]
    verify(SECRET, f"t={NOW},{other},{sign(SECRET, NOW, BODY).split(',')[1]},v2=zz", BODY, NOW)


@pytest.mark.parametrize("header,body,now,why", [
    (sign(SECRET, NOW, BODY), BODY + b" ", NOW, "does not match"),             # body changed
    (sign("whsec_forged_by_someone_else!", NOW, BODY), BODY, NOW, "does not match"),
    (sign(SECRET, NOW, BODY).replace(f"t={NOW}", f"t={NOW + 1}"), BODY, NOW + 1,
     "does not match"),                                                          # t changed
    (sign(SECRET, NOW - 301, BODY), BODY, NOW, "outside the tolerance"),        # stale
    (sign(SECRET, NOW + 301, BODY), BODY, NOW, "outside the tolerance"),        # future
    ("", BODY, NOW, "missing or malformed"),
    (None, BODY, NOW, "missing or malformed"),
    (f"t={NOW}", BODY, NOW, "missing or malformed"),
    (f"t=abc,v1={'0' * 64}", BODY, NOW, "missing or malformed"),
    (f"t={NOW},v1=XYZ", BODY, NOW, "missing or malformed"),
])
def test_forged_stale_or_malformed_signatures_are_refused(header, body, now, why):
    with pytest.raises(SignatureError, match=why):
        verify(SECRET, header, body, now)


def test_within_the_window_is_accepted():
    verify(SECRET, sign(SECRET, NOW - 300, BODY), BODY, NOW)


def test_no_secret_configured_refuses_everything():
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify("", sign("", NOW, BODY), BODY, NOW)
