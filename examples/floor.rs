//! The raw-readlink floor for `scripts/bench`: scan every process's fd
//! table for the socket inodes given and print who holds them.
//!
//! ```text
//! cargo run --release --example floor -- [--threads N] [--static] INODE...
//! ```
//!
//! `--threads 0` (the default) uses `available_parallelism()`. Threads take
//! small batches of pids from a shared counter; `--static` gives each
//! thread one contiguous chunk of the pid list instead (to measure what
//! that split costs). `--libc-readlink` issues `readlinkat` through glibc's
//! wrapper instead of rustix's inline syscall (see BENCHMARKS.md). Prints one
//! `pid fd inode` line per holder on stdout (sorted, so runs and tools can
//! be compared) and a one-line summary on stderr.

#[path = "support/floor_scan.rs"]
#[allow(dead_code)]
mod floor_scan;

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

fn usage(msg: &str) -> ExitCode {
    eprintln!("floor: {msg}\nusage: floor [--threads N] [--static] [--libc-readlink] INODE...");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut threads = 0usize;
    let mut split = floor_scan::Split::Dynamic;
    let mut want = HashSet::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" | "-j" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) => threads = n,
                None => return usage("--threads needs a number"),
            },
            "--static" => split = floor_scan::Split::Static,
            "--libc-readlink" => floor_scan::LIBC_READLINK.store(true, Ordering::Relaxed),
            "-h" | "--help" => return usage("the raw /proc/*/fd scan"),
            other => match other.parse::<u64>() {
                Ok(inode) => {
                    want.insert(inode);
                }
                Err(_) => return usage(&format!("invalid inode '{other}'")),
            },
        }
    }
    if want.is_empty() {
        return usage("no inode given");
    }
    if threads == 0 {
        threads = floor_scan::default_threads();
    }
    let proc = match floor_scan::Proc::open() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("floor: /proc: {e}");
            return ExitCode::from(3);
        }
    };
    let pids = proc.pids();
    let scan = floor_scan::scan_split(&proc, &pids, &want, threads, split);
    let mut out = std::io::stdout().lock();
    for (pid, fd, inode) in &scan.holders {
        if writeln!(out, "{pid} {fd} {inode}").is_err() {
            return ExitCode::SUCCESS; // closed pipe
        }
    }
    eprintln!(
        "floor: {} threads ({:?}), {} processes, {} fds, {} denied, {} holders",
        threads,
        split,
        scan.procs,
        scan.fds,
        scan.denied,
        scan.holders.len()
    );
    if scan.holders.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
