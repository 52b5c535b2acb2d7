//! The grid of [`TICK`]s that probes start on, their answers are read on and
//! their results leave on (issue 21: each thread wake-up costs more than the
//! probe it runs, so work due in one tick is done at one wake-up). The grid
//! starts at one instant shared by every thread, so that all streams due in a
//! tick wake at the same moment.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The grid probes are started on: a tenth of the jitter of a 100 ms interval,
/// and a hundredth of the default 2 s one.
pub const TICK: Duration = Duration::from_millis(10);

/// The first tick at or after `t`.
pub fn on_grid(t: tokio::time::Instant) -> tokio::time::Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = tokio::time::Instant::from_std(*ORIGIN.get_or_init(Instant::now));
    let since = t.saturating_duration_since(origin).as_nanos();
    let tick = TICK.as_nanos();
    let nanos = since.div_ceil(tick) * tick;
    origin + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_fall_on_the_shared_grid_never_before_they_are_due() {
        let now = tokio::time::Instant::now();
        let mut ticks = std::collections::HashSet::new();
        for ms in 0..100 {
            let t = now + Duration::from_micros(ms * 997);
            let g = on_grid(t);
            assert!(g >= t && g - t < TICK, "{ms}");
            ticks.insert(g);
        }
        // 100 deadlines spread over ~100 ms wake on about ten ticks.
        assert!(ticks.len() <= 11, "{}", ticks.len());
    }
}
