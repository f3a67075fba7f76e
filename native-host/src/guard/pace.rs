//! The pace of a time-cycle, sans-IO: the shopper confirmed one unit per period, so the
//! n-th unit a session charges may reach the card no earlier than n − 1 periods after
//! the session's first unit was charged, less a small [`TOLERANCE`] for the relay's
//! latency. The shop's replies never set the pace. Time comes in as an argument (a
//! monotonic [`Instant`]), so tests drive the clock.

use std::time::{Duration, Instant};

/// The longest time-cycle period, in seconds: the one rule for the API, its OpenAPI
/// document, the extension and this host.
pub const MAX_PERIOD_SECS: u64 = 3600;
/// How much earlier than its due time a unit may arrive (relay latency, clock jitter).
pub const TOLERANCE: Duration = Duration::from_secs(1);
/// A time-cycle session is held at least a period and this long between requests, so
/// the longest period still reaches its next tick.
pub const IDLE_MARGIN: Duration = Duration::from_secs(60);

/// A time-cycle's period, 1 to [`MAX_PERIOD_SECS`] seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period(u32);

impl Period {
    pub fn from_secs(secs: u64) -> Result<Period, String> {
        match u32::try_from(secs) {
            Ok(s) if (1..=MAX_PERIOD_SECS).contains(&secs) => Ok(Period(s)),
            _ => Err(format!(
                "period_seconds is 1 to {MAX_PERIOD_SECS}, not {secs}"
            )),
        }
    }

    pub fn secs(self) -> u32 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }

    /// The shortest idle limit of a session with this period.
    pub fn idle_floor(self) -> Duration {
        self.duration() + IDLE_MARGIN
    }
}

/// When a session's first unit was charged (or may have been: a lost answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pace {
    first: Option<Instant>,
}

impl Pace {
    /// A unit was charged, or may have been, at `now`; only the first one sets the pace.
    pub fn charged(&mut self, now: Instant) {
        self.first.get_or_insert(now);
    }

    /// Whether unit `n` (1 for the first) may go at `now`; otherwise how long is left.
    pub fn check(&self, period: Period, n: u32, now: Instant) -> Result<(), Duration> {
        let Some(first) = self.first else {
            // Nothing charged yet: the first unit goes when the shopper's session does.
            return Ok(());
        };
        let offset = period.duration().saturating_mul(n.saturating_sub(1));
        let Some(due) = first.checked_add(offset) else {
            return Err(offset);
        };
        match now.checked_add(TOLERANCE) {
            Some(t) if t >= due => Ok(()),
            Some(t) => Err(due - t),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn periods_are_one_second_to_an_hour() {
        assert!(Period::from_secs(0).is_err());
        assert_eq!(Period::from_secs(1).map(Period::secs), Ok(1));
        assert_eq!(Period::from_secs(3600).map(Period::secs), Ok(3600));
        assert!(Period::from_secs(3601).is_err());
        assert!(Period::from_secs(u64::MAX).is_err());
        // The longest period still fits the idle limit of its session.
        assert_eq!(
            Period::from_secs(3600).map(Period::idle_floor),
            Ok(secs(3660))
        );
    }

    #[test]
    fn unit_n_waits_n_minus_one_periods_after_the_first_less_the_tolerance() {
        let p = Period::from_secs(60).unwrap();
        let t = Instant::now();
        let mut pace = Pace::default();
        // Before anything is charged, the first unit goes at once.
        assert_eq!(pace.check(p, 1, t), Ok(()));
        pace.charged(t);
        // A later charge does not move the pace.
        pace.charged(t + secs(30));
        // Early: right after the DEBIT, and one second before the tolerance.
        assert_eq!(pace.check(p, 2, t), Err(secs(59)));
        assert_eq!(pace.check(p, 2, t + secs(58)), Err(secs(1)));
        // At the tolerance, on time, late.
        assert_eq!(pace.check(p, 2, t + secs(59)), Ok(()));
        assert_eq!(pace.check(p, 2, t + secs(60)), Ok(()));
        assert_eq!(pace.check(p, 2, t + secs(500)), Ok(()));
        // Unit 3 is two periods after the first.
        assert_eq!(pace.check(p, 3, t + secs(60)), Err(secs(59)));
        assert_eq!(pace.check(p, 3, t + secs(119)), Ok(()));
        assert_eq!(
            pace.check(p, 3, t + secs(118) + Duration::from_millis(999)),
            Err(Duration::from_millis(1))
        );
    }
}
