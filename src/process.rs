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

/// CPU time of the calling thread so far, in nanoseconds (0 where the platform does not
/// tell). A system call (~0.3 µs here), unlike reading a wall clock.
pub fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the struct we pass and reads nothing else.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return 0;
    }
    let (seconds, nanos) = (now.tv_sec.max(0) as u64, now.tv_nsec.max(0) as u64);
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
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

    #[test]
    fn a_threads_cpu_time_counts_its_own_work_only() {
        let spin = |seconds: f64| {
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed().as_secs_f64() < seconds {
                x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(1));
            }
            std::hint::black_box(x);
        };
        let before = thread_cpu_nanos();
        spin(0.02);
        let busy = thread_cpu_nanos() - before;
        assert!(busy >= 10_000_000, "{busy} ns for 20 ms of spinning");
        // Another thread's work, while this one sleeps, is not this thread's time.
        let before = thread_cpu_nanos();
        std::thread::spawn(move || spin(0.05)).join().unwrap();
        let idle = thread_cpu_nanos() - before;
        assert!(
            idle < 20_000_000,
            "{idle} ns while another thread worked 50 ms"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn memory_figures_are_read_on_linux() {
        let (now, peak) = (current_rss().expect("VmRSS"), peak_rss().expect("VmHWM"));
        assert!(now > 0 && peak >= now);
    }
}
