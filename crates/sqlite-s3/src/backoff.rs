//! How long to wait before trying again, for every retry loop of the crate:
//! exponential backoff with "full jitter". The pause after try `attempt`
//! is a random duration up to `min(cap, base * 2^(attempt - 1))`, so that
//! callers that collided (writers racing on one object, clients throttled
//! together) spread out instead of colliding again.
//!
//! Used by [`RetryPolicy`](crate::RetryPolicy) (the retrying transaction),
//! [`RequestRetry`](crate::store::RequestRetry) (transient store failures
//! and conditional writes) and the wait for a held lease.

use std::time::Duration;

/// Doublings stop here: `base * 2^20` outgrows any sensible cap.
const MAX_DOUBLINGS: u32 = 20;

/// A random pause of at most [`ceiling`]`(base, cap, attempt)`, where
/// `attempt` counts failed tries from 1 (0 is taken as 1).
pub(crate) fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let ceiling = ceiling(base, cap, attempt);
    // `Duration::mul_f64`, without its panic when rounding overflows.
    Duration::try_from_secs_f64(ceiling.as_secs_f64() * fastrand::f64()).unwrap_or(ceiling)
}

/// The longest pause after try `attempt`: `min(cap, base * 2^(attempt - 1))`.
pub(crate) fn ceiling(base: Duration, cap: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(MAX_DOUBLINGS))
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(20);
    const CAP: Duration = Duration::from_secs(2);

    #[test]
    fn a_pause_is_bounded_by_the_cap() {
        for attempt in 0..64 {
            for _ in 0..50 {
                let pause = full_jitter(BASE, CAP, attempt);
                assert!(pause <= ceiling(BASE, CAP, attempt), "try {attempt}: {pause:?}");
                assert!(pause <= CAP);
            }
        }
    }

    #[test]
    fn the_ceiling_doubles_with_each_try_up_to_the_cap() {
        assert_eq!(ceiling(BASE, CAP, 0), BASE);
        assert_eq!(ceiling(BASE, CAP, 1), BASE);
        assert_eq!(ceiling(BASE, CAP, 2), BASE * 2);
        assert_eq!(ceiling(BASE, CAP, 5), BASE * 16);
        assert_eq!(ceiling(BASE, CAP, 7), BASE * 64);
        assert_eq!(ceiling(BASE, CAP, 8), CAP);
        assert_eq!(ceiling(BASE, CAP, 30), CAP);
    }

    #[test]
    fn pauses_grow_with_the_tries() {
        fastrand::seed(7);
        let average = |attempt| (0..2000).map(|_| full_jitter(BASE, CAP, attempt)).sum::<Duration>() / 2000;
        let (first, fourth, tenth) = (average(1), average(4), average(10));
        assert!(first < fourth && fourth < tenth, "{first:?} {fourth:?} {tenth:?}");
        assert!(tenth > CAP / 3, "late pauses spread up to the cap: {tenth:?}");
    }

    #[test]
    fn huge_tries_and_durations_never_panic() {
        for attempt in [u32::MAX, u32::MAX - 1, 1 << 31, 21, 32, 33] {
            assert!(full_jitter(BASE, CAP, attempt) <= CAP);
            assert!(full_jitter(Duration::MAX, Duration::MAX, attempt) <= Duration::MAX);
            assert_eq!(ceiling(Duration::MAX, Duration::MAX, attempt), Duration::MAX);
        }
        assert_eq!(full_jitter(Duration::ZERO, CAP, u32::MAX), Duration::ZERO);
        assert_eq!(full_jitter(BASE, Duration::ZERO, 3), Duration::ZERO);
    }
}
