//! The /proc fd scan in process: `sockmap::collect::fdscan::scan_holders`
//! against the raw floor (`examples/support/floor_scan.rs`, the same code
//! `examples/floor` runs), single- and multi-threaded, on this host's
//! /proc as it is, and the procfs crate's per-fd API doing the same job.
//! Run it on a crowded host:
//!
//! ```text
//! scripts/bench --procs 2000 --fds 50 --criterion   # crowd up, then this bench
//! cargo bench --bench scan                          # whatever /proc holds now
//! ```
//!
//! The wanted set is one socket this bench holds, so both scans find one
//! holder and spend their time reading links, as `inspect :PORT` does.

#[path = "../examples/support/floor_scan.rs"]
#[allow(dead_code)]
mod floor_scan;

use std::collections::HashSet;
use std::hint::black_box;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sockmap::collect::fdscan::scan_holders;

fn bench(c: &mut Criterion) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let fd = {
        use std::os::fd::AsRawFd;
        listener.as_raw_fd()
    };
    let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .expect("stat our own socket")
        .ino();
    let want: HashSet<u64> = [inode].into();
    let proc = floor_scan::Proc::open().expect("open /proc");
    let threads = floor_scan::default_threads();

    // What the host looks like, and a cross-check that both scans agree.
    let pids = proc.pids();
    let floor = floor_scan::scan(&proc, &pids, &want, threads);
    let ours = scan_holders(Path::new("/proc"), None, &|i| want.contains(&i)).expect("scan /proc");
    let ours_holders: usize = ours.found.values().map(Vec::len).sum();
    eprintln!(
        "scan: /proc has {} processes, {} fds (floor saw {} holders, scan_holders {}; {} threads)",
        floor.procs,
        floor.fds,
        floor.holders.len(),
        ours_holders,
        threads
    );
    assert_eq!(floor.holders.len(), ours_holders, "the scans disagree");
    assert_eq!(
        procfs_crate_scan(&want, threads).len(),
        ours_holders,
        "the procfs crate's scan disagrees"
    );

    let mut g = c.benchmark_group("proc_fd_scan");
    g.throughput(Throughput::Elements(floor.fds as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("floor_1_thread", |b| {
        b.iter(|| {
            let pids = proc.pids();
            black_box(floor_scan::scan(&proc, &pids, &want, 1))
        })
    });
    g.bench_function(format!("floor_{threads}_threads"), |b| {
        b.iter(|| {
            let pids = proc.pids();
            black_box(floor_scan::scan(&proc, &pids, &want, threads))
        })
    });
    g.bench_function(format!("floor_{threads}_threads_static_split"), |b| {
        b.iter(|| {
            let pids = proc.pids();
            black_box(floor_scan::scan_split(
                &proc,
                &pids,
                &want,
                threads,
                floor_scan::Split::Static,
            ))
        })
    });
    g.bench_function("scan_holders", |b| {
        b.iter(|| {
            black_box(scan_holders(Path::new("/proc"), None, &|i| {
                want.contains(&i)
            }))
        })
    });
    // The procfs crate's per-fd API (`Process::fd()`: openat + readlinkat
    // + statat + close and a few allocations per fd), which the scan does
    // not use: the number that backs the hand-written scan.
    g.bench_function("procfs_crate_1_thread", |b| {
        b.iter(|| black_box(procfs_crate_scan(&want, 1)))
    });
    g.bench_function(format!("procfs_crate_{threads}_threads"), |b| {
        b.iter(|| black_box(procfs_crate_scan(&want, threads)))
    });
    g.finish();
    drop(listener);
}

/// Holders of `want` through the procfs crate: every process's
/// `Process::fd()`, split over `threads` threads by pid.
fn procfs_crate_scan(want: &HashSet<u64>, threads: usize) -> Vec<(i32, i32)> {
    let procs: Vec<procfs::process::Process> = procfs::process::all_processes()
        .expect("list /proc")
        .filter_map(Result::ok)
        .collect();
    let chunk = procs.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = procs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut found = Vec::new();
                    for p in part {
                        let Ok(fds) = p.fd() else { continue };
                        for fd in fds.flatten() {
                            if let procfs::process::FDTarget::Socket(inode) = fd.target {
                                if want.contains(&inode) {
                                    found.push((p.pid, fd.fd));
                                }
                            }
                        }
                    }
                    found
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

criterion_group!(benches, bench);
criterion_main!(benches);
