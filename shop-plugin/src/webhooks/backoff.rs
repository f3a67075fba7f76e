//! When a failed webhook delivery is tried again: exponential backoff with a ceiling per
//! delay and a limit on the whole, after which the event is kept as failed for the
//! operator (`shop-plugin events list --failed`, `events retry`).

/// The retry schedule. The delay after the n-th failed attempt is
/// `min(first_secs * 2^(n-1), max_delay_secs)`; retries go on while the delays so far add
/// up to at most `give_up_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first_secs: i64,
    pub max_delay_secs: i64,
    pub give_up_secs: i64,
}

impl Backoff {
    /// 30 s, 1 min, 2 min, … up to 6 h between attempts, for up to 3 days.
    pub const DEFAULT: Backoff = Backoff {
        first_secs: 30,
        max_delay_secs: 6 * 3600,
        give_up_secs: 3 * 86_400,
    };

    /// Attempts at most, whatever the settings: zero delays must not retry forever.
    pub const MAX_ATTEMPTS: u32 = 64;

    /// The delay after the `n`-th failed attempt (n >= 1).
    pub fn delay(&self, n: u32) -> i64 {
        let first = self.first_secs.max(0);
        let doubled = first.saturating_mul(1i64 << n.saturating_sub(1).min(40));
        doubled.min(self.max_delay_secs.max(0))
    }

    /// After `attempts` failed attempts: the delay before the next one, or `None` when
    /// the event has failed for good.
    pub fn after_failure(&self, attempts: u32) -> Option<i64> {
        if attempts == 0 || attempts >= Self::MAX_ATTEMPTS {
            return None;
        }
        let waited = (1..=attempts).fold(0i64, |s, n| s.saturating_add(self.delay(n)));
        (waited <= self.give_up_secs).then(|| self.delay(attempts))
    }

    /// Every delay of the schedule, in order (for the operator and the docs).
    pub fn schedule(&self) -> Vec<i64> {
        (1..)
            .map_while(|n| self.after_failure(n))
            .collect::<Vec<_>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_doubles_to_six_hours_and_stops_within_three_days() {
        let s = Backoff::DEFAULT.schedule();
        assert_eq!(&s[..4], &[30, 60, 120, 240]);
        assert!(
            s.windows(2).all(|w| w[1] == (w[0] * 2).min(6 * 3600)),
            "{s:?}"
        );
        assert_eq!(*s.last().expect("some"), 6 * 3600);
        let total: i64 = s.iter().sum();
        assert!(total <= 3 * 86_400, "{total}");
        assert!(
            total > 3 * 86_400 - 6 * 3600,
            "close to three days: {total}"
        );
        assert_eq!(s.len(), 20, "21 attempts in all");
        assert_eq!(Backoff::DEFAULT.after_failure(21), None);
    }

    #[test]
    fn zero_delays_are_capped_and_give_up_zero_fails_at_once() {
        let zero = Backoff {
            first_secs: 0,
            max_delay_secs: 0,
            give_up_secs: 0,
        };
        assert_eq!(zero.after_failure(1), Some(0));
        assert_eq!(zero.schedule().len() as u32, Backoff::MAX_ATTEMPTS - 1);
        let never = Backoff {
            give_up_secs: 0,
            ..Backoff::DEFAULT
        };
        assert_eq!(never.after_failure(1), None);
    }
}
