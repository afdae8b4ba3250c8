//! When the sync loop tries again and what retention purges: pure functions of their inputs
//! (the random draw and the clock are arguments), tested without sleeping.

use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone, Utc};

use crate::config::Retention;

/// The first pause after a failed round.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest pause between attempts while the hub is unreachable.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
/// The shortest pause, whatever the draw: never a tight loop.
const BACKOFF_FLOOR: Duration = Duration::from_millis(250);

/// Exponential backoff with full jitter (each pause drawn uniformly below a ceiling that
/// doubles from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`]), so a fleet of buses coming back into
/// coverage at once does not knock on the hub in step.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The ceiling of the next pause.
    pub fn ceiling(&self) -> Duration {
        let doubled = BACKOFF_FIRST.saturating_mul(1u32 << self.failures.min(20));
        doubled.min(BACKOFF_MAX)
    }

    /// Records a failure and returns the pause before the next attempt; `draw` is uniform in
    /// [0, 1] (clamped).
    pub fn failed(&mut self, draw: f64) -> Duration {
        let pause = self.ceiling().mul_f64(draw.clamp(0.0, 1.0));
        self.failures = self.failures.saturating_add(1);
        pause.max(BACKOFF_FLOOR)
    }

    /// After a successful round: the next failure starts again from [`BACKOFF_FIRST`].
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Requests finished before this moment (and acknowledged by the hub) are purged.
/// `end-of-day`: the start of today on the bus's clock (`Local`, Europe/Brussels on a bus), so a
/// request finished today stays until tomorrow's first purge; `Hours(n)`: `now − n` hours.
pub fn purge_cutoff(retention: Retention, now: DateTime<Utc>) -> DateTime<Utc> {
    purge_cutoff_in(retention, now, &Local)
}

/// [`purge_cutoff`] in a given time zone (the tests use a fixed one).
pub fn purge_cutoff_in<Tz: TimeZone>(
    retention: Retention,
    now: DateTime<Utc>,
    zone: &Tz,
) -> DateTime<Utc> {
    match retention {
        Retention::Hours(hours) => now - chrono::Duration::hours(i64::from(hours)),
        Retention::EndOfDay => {
            let today = now.with_timezone(zone).date_naive();
            // A day that starts in a DST gap has no midnight: take its earliest moment after.
            zone.from_local_datetime(&today.and_time(NaiveTime::MIN))
                .earliest()
                .or_else(|| {
                    zone.from_local_datetime(&today.and_hms_opt(1, 0, 0).unwrap_or_default())
                        .earliest()
                })
                .map(|start| start.with_timezone(&Utc))
                .unwrap_or(now)
        }
    }
}
