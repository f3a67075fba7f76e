"""Decimal totals to minor units by the currency's ISO 4217 exponent; no floats."""

from decimal import Decimal

import pytest

from pretix_purse.amounts import (
    AmountError, exponent, from_minor_units, numeric_code, to_minor_units,
)


@pytest.mark.parametrize("total,currency,units", [
    ("1500", "JPY", 1500),        # 0 decimals
    ("1500.00", "JPY", 1500),     # pretix keeps two places whatever the currency
    ("23.00", "EUR", 2300),       # 2 decimals
    ("0.01", "EUR", 1),
    ("12.5", "eur", 1250),
    ("7.500", "KWD", 7500),       # 3 decimals
    ("0.001", "BHD", 1),
    ("42949672.95", "EUR", 4294967295),
])
def test_to_minor_units(total, currency, units):
    assert to_minor_units(Decimal(total), currency) == units
    assert from_minor_units(units, currency) == Decimal(total)


@pytest.mark.parametrize("total,currency,why", [
    ("1500.50", "JPY", "more decimals"),
    ("12.345", "EUR", "more decimals"),
    ("1.0001", "KWD", "more decimals"),
    ("0", "EUR", "outside"),
    ("-5.00", "EUR", "outside"),
    ("42949672.96", "EUR", "outside"),
    ("NaN", "EUR", "not a valid amount"),
    ("Infinity", "EUR", "not a valid amount"),
])
def test_refused_amounts(total, currency, why):
    with pytest.raises(AmountError, match=why):
        to_minor_units(Decimal(total), currency)


def test_floats_are_refused():
    with pytest.raises(AmountError, match="never float"):
        to_minor_units(12.5, "EUR")


def test_currencies():
    assert (exponent("JPY"), exponent("EUR"), exponent("KWD")) == (0, 2, 3)
    assert (numeric_code("EUR"), numeric_code("jpy"), numeric_code("KWD")) == ("978", "392", "414")
    for bad in ("XAU", "XXX", "EURO", "ZZZ", ""):
        with pytest.raises(AmountError, match="not an ISO 4217 currency"):
            numeric_code(bad)
