//! What this process has used so far: CPU time and resident memory, for the demo's and
//! the benchmark's tables.

/// User plus system CPU time of this process so far, in seconds (0 where the platform
/// does not tell).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Peak resident memory of this process so far (VmHWM), if the platform tells.
pub fn peak_rss() -> Option<u64> {
    memory_status("VmHWM")
}

/// Resident memory of this process now (VmRSS), if the platform tells.
pub fn current_rss() -> Option<u64> {
    memory_status("VmRSS")
}

/// Resets the kernel's peak-RSS mark to the current RSS (Linux: `clear_refs` value 5), so
/// a stage's peak can be read on its own. False where that is not possible.
pub fn reset_peak_rss() -> bool {
    // Hands the heap that earlier stages freed (making 100,000 reports frees hundreds of
    // MiB) back to the kernel first, or it would count in this stage's peak.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// One memory figure of /proc/self/status (given in KiB there), in bytes.
fn memory_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_seconds();
        let mut x = 0u64;
        while cpu_seconds() - before < 0.02 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
            }
        }
        std::hint::black_box(x);
        assert!(cpu_seconds() > before);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn memory_figures_are_read_on_linux() {
        let (now, peak) = (current_rss().expect("VmRSS"), peak_rss().expect("VmHWM"));
        assert!(now > 0 && peak >= now);
    }
}
