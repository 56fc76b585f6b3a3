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
/// costs a system call (microseconds in a VM), so it is read only once the
/// wall-time deadline has passed: a one-tick probe then measures what share of
/// the CPU the thread is getting, which estimates the CPU time the call used
/// so far. The call is interrupted once that estimate reaches the budget: on
/// an idle machine about one tick after the wall deadline; on a starved one
/// correspondingly later.
pub(crate) struct CallClock {
    budget: Duration,
    tick: Duration,
    probe: Option<Probe>,
}

struct Probe {
    cpu: Duration,
    wall: Instant,
}

impl CallClock {
    pub(crate) fn new(budget: Duration, tick: Duration) -> CallClock {
        CallClock { budget, tick, probe: None }
    }

    fn ticks(&self, time: Duration) -> u64 {
        (time.as_nanos().div_ceil(self.tick.as_nanos().max(1)) as u64).max(1)
    }

    /// Starts the clock for the next call: the epoch ticks until its deadline.
    pub(crate) fn arm(&mut self) -> u64 {
        self.probe = None;
        self.ticks(self.budget)
    }

    /// Called by wasmtime when the epoch deadline is reached mid-call.
    pub(crate) fn on_deadline(&mut self) -> UpdateDeadline {
        let Some(probe) = &self.probe else {
            self.probe = Some(Probe { cpu: thread_cpu_time(), wall: Instant::now() });
            return UpdateDeadline::Continue(1);
        };
        let cpu_in_probe = thread_cpu_time().saturating_sub(probe.cpu);
        let wall_in_probe = probe.wall.elapsed().max(Duration::from_micros(1));
        let share = (cpu_in_probe.as_secs_f64() / wall_in_probe.as_secs_f64()).min(1.0);
        let used = self.budget.mul_f64(share) + cpu_in_probe;
        if used >= self.budget {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(self.ticks((self.budget - used).div_f64(share.max(0.01))))
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

    #[test]
    fn a_call_starved_of_cpu_is_not_interrupted() {
        let mut clock = clock(10);
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(1)));
        std::thread::sleep(Duration::from_millis(30)); // wall time passes, no CPU used
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(_)));
    }

    #[test]
    fn a_call_burning_cpu_is_interrupted() {
        let mut clock = clock(10);
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Continue(1)));
        let spin_until = thread_cpu_time() + Duration::from_millis(12);
        while thread_cpu_time() < spin_until {
            std::hint::spin_loop();
        }
        assert!(matches!(clock.on_deadline(), UpdateDeadline::Interrupt));
    }
}
