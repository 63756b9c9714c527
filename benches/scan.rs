//! The /proc fd scan in process: `sockmap::collect::fdscan::scan_holders`
//! against the raw floor (`examples/support/floor_scan.rs`, the same code
//! `examples/floor` runs), single- and multi-threaded, on this host's
//! /proc as it is. Run it on a crowded host to get issue-6 numbers:
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
    g.finish();
    drop(listener);
}

criterion_group!(benches, bench);
criterion_main!(benches);
