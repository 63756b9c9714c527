//! sock_diag parsing cost: `sockmap::collect::diag::parse_dump` over a
//! synthetic 40,000-socket dump (the datagrams a 32 KiB reader gets), keeping
//! none, a few, or many sockets.
//!
//! Target: parsing allocates O(matching sockets), not O(all
//! sockets); in fact nothing per message or per socket kept, only the
//! growth of the output `Vec`. A counting allocator checks it: before
//! timing, each case prints the allocations made by one full parse and
//! fails if there are more than that growth needs.
//!
//! ```text
//! cargo bench --bench diag
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sockmap::collect::diag::{parse_dump, DumpStatus};
use sockmap::model::{Proto, Socket};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to System; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SOCKETS: usize = 40_000;
const DATAGRAM: usize = 32 * 1024;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_DONE: u16 = 3;
const NLM_F_MULTI: u16 = 2;
const INET_DIAG_SKMEMINFO: u16 = 7;

fn nlmsghdr(out: &mut Vec<u8>, len: usize, kind: u16, flags: u16, seq: u32) {
    out.extend_from_slice(&(len as u32).to_ne_bytes()); // nlmsg_len
    out.extend_from_slice(&kind.to_ne_bytes()); // nlmsg_type
    out.extend_from_slice(&flags.to_ne_bytes()); // nlmsg_flags
    out.extend_from_slice(&seq.to_ne_bytes()); // nlmsg_seq
    out.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
}

/// One `inet_diag_msg` (72 bytes) + an INET_DIAG_SKMEMINFO attribute, as
/// the kernel sends for an IPv4 TCP socket. Port `port`, inode `inode`.
fn socket_msg(out: &mut Vec<u8>, i: usize, port: u16, state: u8) {
    let payload = 72 + 4 + 9 * 4;
    nlmsghdr(out, 16 + payload, SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, 1);
    out.extend_from_slice(&[2, state, 0, 0]); // family AF_INET, state, timer, retrans
    out.extend_from_slice(&port.to_be_bytes()); // id.sport
    out.extend_from_slice(&(40_000 + (i % 20_000) as u16).to_be_bytes()); // id.dport
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[127, 0, 0, 1]);
    out.extend_from_slice(&src); // id.src
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&[127, 0, 0, 2]);
    out.extend_from_slice(&dst); // id.dst
    out.extend_from_slice(&0u32.to_ne_bytes()); // id.if
    out.extend_from_slice(&(i as u64).to_ne_bytes()); // id.cookie
    out.extend_from_slice(&0u32.to_ne_bytes()); // expires
    out.extend_from_slice(&0u32.to_ne_bytes()); // rqueue
    out.extend_from_slice(&0u32.to_ne_bytes()); // wqueue
    out.extend_from_slice(&0u32.to_ne_bytes()); // uid
    out.extend_from_slice(&(100_000 + i as u32).to_ne_bytes()); // inode
    out.extend_from_slice(&((4 + 36) as u16).to_ne_bytes()); // nla_len
    out.extend_from_slice(&INET_DIAG_SKMEMINFO.to_ne_bytes()); // nla_type
    for v in 0..9u32 {
        out.extend_from_slice(&v.to_ne_bytes()); // sk_meminfo[9], drops last
    }
}

/// The datagrams of a dump of `SOCKETS` sockets; every `every`-th socket
/// is on port 8000 (the rest on other ports), the last datagram ends with
/// NLMSG_DONE.
fn dump(every: usize) -> Vec<Vec<u8>> {
    let mut grams = Vec::new();
    let mut cur = Vec::with_capacity(DATAGRAM);
    for i in 0..SOCKETS {
        if cur.len() + 128 > DATAGRAM {
            grams.push(std::mem::replace(&mut cur, Vec::with_capacity(DATAGRAM)));
        }
        let port = if i % every == 0 {
            8000
        } else {
            9000 + (i % 1000) as u16
        };
        socket_msg(&mut cur, i, port, 1);
    }
    nlmsghdr(&mut cur, 20, NLMSG_DONE, NLM_F_MULTI, 1);
    cur.extend_from_slice(&0i32.to_ne_bytes());
    grams.push(cur);
    grams
}

/// Parse the whole dump, turning sockets on port 8000 into `Socket`s
/// (what `Collector::sockets` does for `:8000` without the kernel filter).
fn parse_all(grams: &[Vec<u8>], keep_all: bool) -> Vec<Socket> {
    let mut kept = Vec::new();
    for g in grams {
        let status = parse_dump(Proto::Tcp, g, |e| {
            if keep_all || e.local().1 == 8000 {
                let (socket, problem) = e.decode();
                assert_eq!(problem, None, "attributes not decoded");
                kept.push(socket);
            }
        });
        match status {
            Ok(DumpStatus::More) => {}
            Ok(DumpStatus::Done) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    kept
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_dump_40k");
    g.throughput(Throughput::Elements(SOCKETS as u64));
    g.sample_size(20);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(2));
    for (name, every, keep_all) in [
        ("keep_1_in_40000", SOCKETS, false),
        ("keep_1_in_1000", 1000, false),
        ("keep_1_in_10", 10, false),
        ("keep_all", 1, true),
    ] {
        let grams = dump(every);
        let before = ALLOCS.load(Ordering::Relaxed);
        let sockets = parse_all(&grams, keep_all);
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        let kept = sockets.len();
        // The attributes were decoded too: sk_drops is the 9th meminfo word.
        assert_eq!(
            sockets.first().and_then(|s| s.drops),
            Some(8),
            "SKMEMINFO not decoded"
        );
        drop(sockets);
        // A Vec grown by doubling to `kept` elements reallocates about
        // log2(kept) times: anything more is an allocation per message.
        let growth = (usize::BITS - kept.leading_zeros()) as usize + 1;
        assert!(
            allocs <= growth,
            "{name}: {allocs} allocations for {kept} sockets kept (growth needs {growth})"
        );
        eprintln!(
            "parse_dump_40k/{name}: {} datagrams, {SOCKETS} sockets, {kept} kept, {allocs} allocations \
             ({:.2} per kept socket)",
            grams.len(),
            allocs as f64 / kept.max(1) as f64
        );
        g.bench_function(name, |b| {
            b.iter(|| black_box(parse_all(black_box(&grams), keep_all)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
