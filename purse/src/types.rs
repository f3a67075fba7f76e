//! Domain types of the purse protocol: identifiers, counters, money and time.
//!
//! Every value that crosses a boundary is parsed into one of these once; inside the
//! library nothing handles bare integers or byte slices for protocol fields.

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::error::ParseError;

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            pub fn from_slice(b: &[u8]) -> Result<Self, ParseError> {
                let a: [u8; $len] = b.try_into().map_err(|_| ParseError::Length {
                    field: stringify!($name),
                    expected: $len,
                    got: b.len(),
                })?;
                Ok(Self(a))
            }

            pub fn from_hex(s: &str) -> Result<Self, ParseError> {
                let v = hex::decode(s).map_err(|_| ParseError::Hex(stringify!($name)))?;
                Self::from_slice(&v)
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

byte_id!(
    /// The card's 8-byte identity, chosen by the issuer.
    CardId,
    8
);
byte_id!(
    /// The SAM's 8-byte identity.
    SamId,
    8
);
byte_id!(
    /// A 16-byte random challenge (`RND_S` from the SAM, `RND_C` from the card).
    Rnd,
    16
);
byte_id!(
    /// A 16-byte journal chain value `J` of a settlement batch.
    Journal,
    16
);
byte_id!(
    /// An 8-byte MAC (S1, S2, S2k, S3, TAC, TRMAC). Compare with [`Mac8::verify`].
    Mac8,
    8
);

impl Mac8 {
    /// Constant-time comparison: a MAC check must not leak how many bytes matched.
    pub fn verify(&self, expected: &Mac8) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&expected.0).into()
    }
}

macro_rules! int_newtype {
    ($(#[$doc:meta])* $name:ident, $int:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $int);

        impl $name {
            pub fn get(self) -> $int {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

int_newtype!(
    /// An amount of money in minor units (cents) of the purse's currency.
    Amount,
    u32
);
int_newtype!(
    /// A sum of amounts (a batch total): 8 bytes on the wire, below 2^53 in JSON.
    Sum,
    u64
);
int_newtype!(
    /// The card's transaction number: `NT_last + 1` for the session INITIALIZE opens.
    Nt,
    u32
);
int_newtype!(
    /// The SAM's transaction sequence number: strictly increasing, never reused.
    SamTxSeq,
    u32
);
int_newtype!(
    /// The number of a closed settlement period (the first close is 1).
    CloseSeq,
    u32
);
int_newtype!(
    /// A key version `KV`: selects the issuer master keys.
    KeyVersion,
    u8
);
int_newtype!(
    /// Unix seconds, 4 bytes on the wire.
    DateTime,
    u32
);
int_newtype!(
    /// A count of units charged (time-cycle) or the cap `MaxUnits`.
    Units,
    u16
);

impl Nt {
    /// The NT after this one, or `None` when the card's NT space is exhausted.
    pub fn next(self) -> Option<Nt> {
        self.0.checked_add(1).map(Nt)
    }
}

impl SamTxSeq {
    pub fn next(self) -> Option<SamTxSeq> {
        self.0.checked_add(1).map(SamTxSeq)
    }
}

impl Amount {
    pub fn checked_sub(self, o: Amount) -> Option<Amount> {
        self.0.checked_sub(o.0).map(Amount)
    }

    pub fn checked_add(self, o: Amount) -> Option<Amount> {
        self.0.checked_add(o.0).map(Amount)
    }

    /// `self * units`, the total of `units` units of this price.
    pub fn checked_mul(self, units: Units) -> Option<Amount> {
        self.0.checked_mul(u32::from(units.0)).map(Amount)
    }
}

/// An ISO 4217 currency, stored as its numeric code (EUR = 978).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Currency(u16);

/// Alphabetic and numeric ISO 4217 codes of the currencies a purse is likely to hold.
const CURRENCIES: &[(&str, u16, u8)] = &[
    ("AUD", 36, 2),
    ("CAD", 124, 2),
    ("CHF", 756, 2),
    ("CNY", 156, 2),
    ("CZK", 203, 2),
    ("DKK", 208, 2),
    ("EUR", 978, 2),
    ("GBP", 826, 2),
    ("HUF", 348, 2),
    ("ISK", 352, 0),
    ("JPY", 392, 0),
    ("KRW", 410, 0),
    ("NOK", 578, 2),
    ("NZD", 554, 2),
    ("PLN", 985, 2),
    ("RON", 946, 2),
    ("SEK", 752, 2),
    ("SGD", 702, 2),
    ("USD", 840, 2),
];

impl Currency {
    pub const EUR: Currency = Currency(978);
    pub const USD: Currency = Currency(840);

    /// A numeric ISO 4217 code: three decimal digits, 1..=999.
    pub fn from_numeric(code: u16) -> Result<Self, ParseError> {
        if (1..=999).contains(&code) {
            Ok(Currency(code))
        } else {
            Err(ParseError::Currency(code.to_string()))
        }
    }

    /// Parses "EUR" or "978".
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if let Ok(n) = s.parse::<u16>() {
            return Self::from_numeric(n);
        }
        let up = s.to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(a, _, _)| *a == up)
            .map(|(_, n, _)| Currency(*n))
            .ok_or_else(|| ParseError::Currency(s.to_string()))
    }

    pub fn numeric(self) -> u16 {
        self.0
    }

    /// The alphabetic code, where we know it.
    pub fn alpha(self) -> Option<&'static str> {
        CURRENCIES
            .iter()
            .find(|(_, n, _)| *n == self.0)
            .map(|(a, _, _)| *a)
    }

    /// Digits after the decimal point (2 when unknown), for display only.
    pub fn minor_digits(self) -> u8 {
        CURRENCIES
            .iter()
            .find(|(_, n, _)| *n == self.0)
            .map_or(2, |(_, _, d)| *d)
    }

    /// Formats an amount for people: `12.50 EUR`.
    pub fn format(self, amount: Amount) -> String {
        self.format_minor(u64::from(amount.0))
    }

    /// Formats any count of minor units (a batch sum, say) for people.
    pub fn format_minor(self, minor: u64) -> String {
        let d = u32::from(self.minor_digits());
        let code = self
            .alpha()
            .map_or_else(|| self.0.to_string(), str::to_string);
        if d == 0 {
            return format!("{minor} {code}");
        }
        let div = 10u64.pow(d);
        format!("{}.{:0w$} {code}", minor / div, minor % div, w = d as usize)
    }
}

impl TryFrom<u16> for Currency {
    type Error = ParseError;
    fn try_from(v: u16) -> Result<Self, ParseError> {
        Self::from_numeric(v)
    }
}

impl From<Currency> for u16 {
    fn from(c: Currency) -> u16 {
        c.0
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.alpha() {
            Some(a) => write!(f, "Currency({a}/{})", self.0),
            None => write!(f, "Currency({})", self.0),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.alpha() {
            Some(a) => f.write_str(a),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The INITIALIZE mode, `P1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Mode {
    /// `00`: status only, no debit possible (used by recovery).
    StatusOnly,
    /// `01`: one purchase of `U`.
    Single,
    /// `02`: time-cycle, `U` per unit, up to `MaxUnits` units.
    TimeCycle,
}

impl Mode {
    pub fn p1(self) -> u8 {
        match self {
            Mode::StatusOnly => 0,
            Mode::Single => 1,
            Mode::TimeCycle => 2,
        }
    }

    pub fn from_p1(p1: u8) -> Option<Mode> {
        match p1 {
            0 => Some(Mode::StatusOnly),
            1 => Some(Mode::Single),
            2 => Some(Mode::TimeCycle),
            _ => None,
        }
    }

    /// Whether `U` and `MaxUnits` are consistent with the mode (spec 4, else 6A80).
    pub fn accepts(self, u: Amount, max_units: Units) -> bool {
        match self {
            Mode::StatusOnly => u.0 == 0 && max_units.0 == 0,
            Mode::Single => u.0 >= 1 && max_units.0 == 1,
            Mode::TimeCycle => u.0 >= 1 && max_units.0 >= 1,
        }
    }
}

impl TryFrom<u8> for Mode {
    type Error = ParseError;
    fn try_from(v: u8) -> Result<Self, ParseError> {
        Mode::from_p1(v).ok_or(ParseError::Mode(v))
    }
}

impl From<Mode> for u8 {
    fn from(m: Mode) -> u8 {
        m.p1()
    }
}

/// The purse application identifier.
pub const AID: [u8; 7] = [0xF0, 0x45, 0x50, 0x55, 0x52, 0x53, 0x45];

/// The application version the card reports in SELECT.
pub const APP_VERSION: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parse_and_format() {
        assert_eq!(Currency::parse("eur").unwrap(), Currency::EUR);
        assert_eq!(Currency::parse("978").unwrap(), Currency::EUR);
        assert!(Currency::parse("XXQ").is_err());
        assert!(Currency::from_numeric(0).is_err());
        assert!(Currency::from_numeric(1000).is_err());
        assert_eq!(Currency::EUR.format(Amount(1250)), "12.50 EUR");
        assert_eq!(Currency::EUR.format(Amount(5)), "0.05 EUR");
        assert_eq!(
            Currency::parse("JPY").unwrap().format(Amount(500)),
            "500 JPY"
        );
        assert_eq!(Currency::EUR.format_minor(1 << 40), "10995116277.76 EUR");
    }

    #[test]
    fn ids_roundtrip_hex_and_reject_bad_lengths() {
        let c = CardId::from_hex("1000000000000001").unwrap();
        assert_eq!(c.to_hex(), "1000000000000001");
        assert!(CardId::from_hex("10").is_err());
        assert!(CardId::from_hex("zz00000000000001").is_err());
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, "\"1000000000000001\"");
    }

    #[test]
    fn mac_verify_is_exact() {
        let a = Mac8([1, 2, 3, 4, 5, 6, 7, 8]);
        let mut b = a;
        assert!(a.verify(&b));
        b.0[7] ^= 1;
        assert!(!a.verify(&b));
    }
}
