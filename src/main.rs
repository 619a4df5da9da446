//! The `divvi` command: a thin layer over the library. Parses arguments, loads the party's
//! config, shows progress, and prints what happened.

mod cli;

fn main() -> std::process::ExitCode {
    keep_large_buffers_out_of_the_heap();
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            cli::error_exit_code(&e)
        }
    }
}

/// Buffers of 1 MiB and more (a batch's verifier shares, a stash frame) are mapped apart
/// and given back to the kernel when freed. glibc otherwise raises this threshold to the
/// largest buffer freed so far, after which such buffers stay in each thread's arena:
/// aggregate of 100,000 small Prio3 reports held 200 MiB of memory for 85 MiB of heap.
fn keep_large_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
