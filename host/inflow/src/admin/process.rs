//! The process's own resource use, read from `/proc/self` at scrape time (Linux).

/// Resident memory in bytes, CPU seconds (user + system) and open file descriptors; `None`
/// where `/proc` does not tell.
pub struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
}

pub fn read() -> ProcessStats {
    // SAFETY: sysconf has no preconditions.
    let (page, ticks) = unsafe { (libc::sysconf(libc::_SC_PAGESIZE), libc::sysconf(libc::_SC_CLK_TCK)) };
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let resident_bytes = statm.and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok()).map(|pages| pages * page.max(1) as u64);
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let cpu_seconds = stat.and_then(|s| {
        // Fields after the command name (which may hold spaces, so split after its ')').
        let mut fields = s.rsplit_once(')')?.1.split_whitespace().skip(11);
        let user: u64 = fields.next()?.parse().ok()?;
        let system: u64 = fields.next()?.parse().ok()?;
        Some((user + system) as f64 / ticks.max(1) as f64)
    });
    let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    ProcessStats { resident_bytes, cpu_seconds, open_fds }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_memory_cpu_and_files() {
        let stats = super::read();
        assert!(stats.resident_bytes.unwrap() > 1 << 20);
        assert!(stats.cpu_seconds.unwrap() >= 0.0);
        assert!(stats.open_fds.unwrap() >= 3);
    }
}
