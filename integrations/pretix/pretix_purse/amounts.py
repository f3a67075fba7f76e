"""Amounts: pretix's decimal totals as the shop plugin's minor-unit integers.

pretix keeps money as ``Decimal`` with two places whatever the currency; the shop plugin
takes a whole number of the currency's minor unit (cents, yen, fils). The conversion is
exact or refused: no float ever touches an amount, and a total with more decimals than
the currency has (12.5 JPY) is an error, never rounded.

The shop plugin knows a currency by its ISO 4217 numeric code for certain (its alphabetic
names cover only the usual purse currencies), so requests carry the numeric code.
"""

from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    # no minor unit
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    # thousandths
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # ten-thousandths (units of account)
    "CLF": 4, "UYW": 4,
}

# ISO 4217 alphabetic -> numeric code, for every currency that has a minor unit (the
# precious metals, bond units, XTS and XXX have none and are not payable).
_NUMERIC = {
    "AED": 784, "AFN": 971, "ALL": 8, "AMD": 51, "AOA": 973, "ARS": 32, "AUD": 36, "AWG": 533,
    "AZN": 944, "BAM": 977, "BBD": 52, "BDT": 50, "BHD": 48, "BIF": 108, "BMD": 60, "BND": 96,
    "BOB": 68, "BOV": 984, "BRL": 986, "BSD": 44, "BTN": 64, "BWP": 72, "BYN": 933, "BZD": 84,
    "CAD": 124, "CDF": 976, "CHE": 947, "CHF": 756, "CHW": 948, "CLF": 990, "CLP": 152,
    "CNY": 156, "COP": 170, "COU": 970, "CRC": 188, "CUP": 192, "CVE": 132, "CZK": 203,
    "DJF": 262, "DKK": 208, "DOP": 214, "DZD": 12, "EGP": 818, "ERN": 232, "ETB": 230,
    "EUR": 978, "FJD": 242, "FKP": 238, "GBP": 826, "GEL": 981, "GHS": 936, "GIP": 292,
    "GMD": 270, "GNF": 324, "GTQ": 320, "GYD": 328, "HKD": 344, "HNL": 340, "HTG": 332,
    "HUF": 348, "IDR": 360, "ILS": 376, "INR": 356, "IQD": 368, "IRR": 364, "ISK": 352,
    "JMD": 388, "JOD": 400, "JPY": 392, "KES": 404, "KGS": 417, "KHR": 116, "KMF": 174,
    "KPW": 408, "KRW": 410, "KWD": 414, "KYD": 136, "KZT": 398, "LAK": 418, "LBP": 422,
    "LKR": 144, "LRD": 430, "LSL": 426, "LYD": 434, "MAD": 504, "MDL": 498, "MGA": 969,
    "MKD": 807, "MMK": 104, "MNT": 496, "MOP": 446, "MRU": 929, "MUR": 480, "MVR": 462,
    "MWK": 454, "MXN": 484, "MXV": 979, "MYR": 458, "MZN": 943, "NAD": 516, "NGN": 566,
    "NIO": 558, "NOK": 578, "NPR": 524, "NZD": 554, "OMR": 512, "PAB": 590, "PEN": 604,
    "PGK": 598, "PHP": 608, "PKR": 586, "PLN": 985, "PYG": 600, "QAR": 634, "RON": 946,
    "RSD": 941, "RUB": 643, "RWF": 646, "SAR": 682, "SBD": 90, "SCR": 690, "SDG": 938,
    "SEK": 752, "SGD": 702, "SHP": 654, "SLE": 925, "SOS": 706, "SRD": 968, "SSP": 728,
    "STN": 930, "SVC": 222, "SYP": 760, "SZL": 748, "THB": 764, "TJS": 972, "TMT": 934,
    "TND": 788, "TOP": 776, "TRY": 949, "TTD": 780, "TWD": 901, "TZS": 834, "UAH": 980,
    "UGX": 800, "USD": 840, "USN": 997, "UYI": 940, "UYU": 858, "UYW": 927, "UZS": 860,
    "VED": 926, "VES": 928, "VND": 704, "VUV": 548, "WST": 882, "XAD": 396, "XAF": 950,
    "XCD": 951, "XCG": 532, "XOF": 952, "XPF": 953, "YER": 886, "ZAR": 710, "ZMW": 967,
    "ZWG": 924,
}

# The shop plugin takes amounts from 1 to 2^32 - 1 minor units.
MAX_MINOR_UNITS = 4294967295


class AmountError(ValueError):
    """An amount or currency the purse cannot take; the message is for people."""


def exponent(currency: str) -> int:
    """The number of decimals of an ISO 4217 currency (2 for most)."""
    code = currency.upper()
    if code not in _NUMERIC:
        raise AmountError(f"{currency!r} is not an ISO 4217 currency with a minor unit")
    return _EXPONENTS.get(code, 2)


def numeric_code(currency: str) -> str:
    """The ISO 4217 numeric code as the shop plugin takes it ("978" for EUR)."""
    exponent(currency)  # refuses unknown codes
    return str(_NUMERIC[currency.upper()])


def to_minor_units(total: Decimal, currency: str) -> int:
    """``total`` (a Decimal in major units) as a whole number of minor units.

    Refuses floats, non-finite or non-positive totals, totals with more decimals than the
    currency has, and totals beyond the shop plugin's range.
    """
    if not isinstance(total, Decimal):
        raise AmountError("amounts must be Decimal, never float")
    exp = exponent(currency)
    if not total.is_finite():
        raise AmountError(f"{total} is not a valid amount")
    try:
        scaled = total.scaleb(exp)
        units = scaled.to_integral_exact()
    except InvalidOperation as e:
        raise AmountError(f"{total} is not a valid amount") from e
    if scaled != units:
        raise AmountError(
            f"{total} {currency.upper()} has more decimals than the {exp} of {currency.upper()}"
        )
    n = int(units)
    if n < 1 or n > MAX_MINOR_UNITS:
        raise AmountError(
            f"{total} {currency.upper()} is outside what a purse payment can take "
            f"(1 to {MAX_MINOR_UNITS} minor units)"
        )
    return n


def from_minor_units(units: int, currency: str) -> Decimal:
    """The inverse of :func:`to_minor_units`, for showing and comparing amounts."""
    return Decimal(int(units)).scaleb(-exponent(currency))
