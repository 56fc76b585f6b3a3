//! The sandbox around one plugin instance: the memory cap, the CPU clock that
//! decides when a call has run too long, and the rate-limited plugin log.
//! Each is a plain value the store holds; nothing here knows the WIT.

use std::time::{Duration, Instant};
use wasmtime::{ResourceLimiter, UpdateDeadline};

/// Caps all linear memories of a store together. Written instead of
/// wasmtime's `StoreLimits` so an exceeded cap is told apart from any other
/// trap (it records the fact), and growth beyond it traps at once rather
/// than letting the guest's allocator fail in its own way.
pub(crate) struct MemoryCap {
    pub(crate) cap: usize,
    pub(crate) used: usize,
    pub(crate) exceeded: bool,
}

impl MemoryCap {
    pub(crate) fn new(cap: usize) -> MemoryCap {
        MemoryCap { cap, used: 0, exceeded: false }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap} bytes exceeded (asked for {asked} bytes)")]
struct MemoryCapExceeded {
    cap: usize,
    asked: usize,
}

/// Most table elements one store may hold (funcref tables of large guests
/// such as CPython hold tens of thousands).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let asked = self.used - current + desired;
        if asked > self.cap {
            self.exceeded = true;
            return Err(MemoryCapExceeded { cap: self.cap, asked }.into());
        }
        self.used = asked;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The CPU deadline of the running call.
///
/// The epoch ticker measures wall time, and a thread starved of CPU (an
/// overloaded machine, a container throttled by its CPU quota) would see
/// honest calls interrupted. Reading the thread's CPU clock at every call
/// costs a system call (microseconds in a VM), so a call is armed for one
/// tick only: the few calls still running then read the CPU clock, and from
/// that reading on the call is charged the CPU time it actually uses. The
/// call is interrupted once that reaches the budget: on an idle machine one
/// tick or less after the wall deadline; on a starved one correspondingly
/// later. Never earlier: a share of the CPU measured in one tick says nothing
/// of how starved the call was before it.
pub(crate) struct CallClock {
    budget: Duration,
    tick: Duration,
    /// The thread's CPU time at the call's first tick; `None` before it.
    cpu_at_first_tick: Option<Duration>,
}

impl CallClock {
    pub(crate) fn new(budget: Duration, tick: Duration) -> CallClock {
        CallClock { budget, tick, cpu_at_first_tick: None }
    }

    fn ticks(&self, time: Duration) -> u64 {
        (time.as_nanos().div_ceil(self.tick.as_nanos().max(1)) as u64).max(1)
    }

    /// Starts the clock for the next call: the epoch ticks until its first
    /// tick, when [`Self::on_deadline`] reads the CPU clock.
    pub(crate) fn arm(&mut self) -> u64 {
        self.cpu_at_first_tick = None;
        1
    }

    /// Called by wasmtime when the epoch deadline is reached mid-call.
    pub(crate) fn on_deadline(&mut self) -> UpdateDeadline {
        let now = thread_cpu_time();
        let Some(first) = self.cpu_at_first_tick else {
            // Less than a tick ran before this reading: not charged, so a
            // call is never cut short of its budget.
            self.cpu_at_first_tick = Some(now);
            return UpdateDeadline::Continue(self.ticks(self.budget));
        };
        let used = now.saturating_sub(first);
        if used >= self.budget {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(self.ticks(self.budget - used))
        }
    }
}

/// CPU time this thread has run.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Plugin log lines, tagged and rate-limited per instance.
pub(crate) struct PluginLog {
    plugin: String,
    rule_id: String,
    window_start: Instant,
    lines_in_window: u32,
    dropped: u64,
}

const LOG_LINES_PER_SECOND: u32 = 20;
const MAX_LOG_LINE_BYTES: usize = 2048;

impl PluginLog {
    pub(crate) fn new(plugin: &str, rule_id: &str) -> PluginLog {
        PluginLog {
            plugin: plugin.to_string(),
            rule_id: rule_id.to_string(),
            window_start: Instant::now(),
            lines_in_window: 0,
            dropped: 0,
        }
    }

    pub(crate) fn write(&mut self, level: tracing::Level, message: &str) {
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            if self.dropped > 0 {
                tracing::warn!(plugin = %self.plugin, rule = %self.rule_id, dropped = self.dropped, "plugin log lines dropped by the rate limit");
            }
            self.window_start = Instant::now();
            self.lines_in_window = 0;
            self.dropped = 0;
        }
        if self.lines_in_window >= LOG_LINES_PER_SECOND {
            self.dropped += 1;
            return;
        }
        self.lines_in_window += 1;
        let message = truncate_utf8(message, MAX_LOG_LINE_BYTES);
        let (plugin, rule) = (&self.plugin, &self.rule_id);
        // tracing needs the level at compile time: one macro per level.
        if level == tracing::Level::ERROR {
            tracing::error!(plugin = %plugin, rule = %rule, "{message}");
        } else if level == tracing::Level::WARN {
            tracing::warn!(plugin = %plugin, rule = %rule, "{message}");
        } else if level == tracing::Level::INFO {
            tracing::info!(plugin = %plugin, rule = %rule, "{message}");
        } else {
            tracing::debug!(plugin = %plugin, rule = %rule, "{message}");
        }
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(budget_ms: u64) -> CallClock {
        CallClock::new(Duration::from_millis(budget_ms), Duration::from_millis(5))
    }

    fn spin(cpu: Duration) {
        let spin_until = thread_cpu_time() + cpu;
        while thread_cpu_time() < spin_until {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_call_starved_of_cpu_is_not_interrupted() {
        let mut clock = clock(10);
        assert_eq!(clock.arm(), 1, "armed for the first tick");
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(2)), "the first tick starts the budget");
        std::thread::sleep(Duration::from_millis(30)); // wall time passes, no CPU used
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(_)));
    }

    #[test]
    fn a_call_is_charged_the_cpu_it_used_not_a_share_of_the_wall_time() {
        let mut clock = clock(10);
        clock.arm();
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(_)));
        // Full speed now, however starved before: 6 of the 10 ms used. (Estimating the whole
        // call from one tick's share of the CPU interrupted it here.)
        spin(Duration::from_millis(6));
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(_)), "cut short with 6 of its 10 ms used");
        spin(Duration::from_millis(5));
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Interrupt), "11 of 10 ms used");
    }

    #[test]
    fn a_call_burning_cpu_is_interrupted() {
        let mut clock = clock(10);
        clock.arm();
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(2)));
        spin(Duration::from_millis(12));
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Interrupt));
    }

    #[test]
    fn a_new_call_starts_a_new_budget() {
        let mut clock = clock(10);
        clock.arm();
        clock.on_deadline();
        spin(Duration::from_millis(12));
        clock.arm();
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(2)), "the last call's CPU is not charged to this one");
    }
}
