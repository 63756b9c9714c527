//! The collect pass without the kernel: a `Collector` over a recorded
//! sock_diag source (`collect::source`) and a fake /proc tree built here
//! in a temporary directory. No root, no network, no live socket.
//!
//! The recordings (tests/fixtures/collect/) are real kernel answers,
//! recorded from three listeners (see `record_the_collect_fixtures`):
//!
//! - v4: `sockmap serve --addr 127.0.0.1 --workers 2 --backlog 7 --stall`,
//!   two clients in its accept queue (five in the second recording);
//! - v6: a `[::1]` listener, backlog 5, TCP_DEFER_ACCEPT, two silent
//!   clients in its SYN queue;
//! - dual: a `[::]` listener, backlog 3, TCP_DEFER_ACCEPT, one silent
//!   client over IPv4 and one over IPv6 in its SYN queue.
//!
//! `listeners.json` says which port and socket inode each got. Everything
//! else the tests expect is written here from that setup. Re-record with
//! `cargo test --test collect_offline -- --ignored` (needs `::1`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sockmap::collect::diag::build_request;
use sockmap::collect::netns::NsKey;
use sockmap::collect::source::{Asked, Exchange, Recorder, Replay, Source, Tape};
use sockmap::collect::Collector;
use sockmap::model::netns::NetnsScope;
use sockmap::model::scan::{FallbackReason, ScanMethod};
use sockmap::model::{
    Family, Inode, ProcessState, Proto, RequestSock, Snapshot, TcpState, WarningKind,
};
use sockmap::target::{Query, Target};

mod common;

/// `idiag_states` bits, from include/net/tcp_states.h.
const LISTEN: u32 = 1 << 10; // TCP_LISTEN = 10
const SYN_RECV: u32 = (1 << 3) | (1 << 12); // TCP_SYN_RECV = 3, TCP_NEW_SYN_RECV = 12

/// What the fake /proc says: somaxconn.
const SOMAXCONN: u32 = 4096;

// ---------------------------------------------------------------------------
// Fixtures

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Listener {
    port: u16,
    inode: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Listeners {
    v4: Listener,
    v6: Listener,
    dual: Listener,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/collect")
}

fn listeners() -> Listeners {
    let text = std::fs::read(fixtures().join("listeners.json")).expect("read listeners.json");
    serde_json::from_slice(&text).expect("parse listeners.json")
}

/// `first.tape.json`: one full pass for each listener's port.
/// `second.tape.json`: a `refresh` of the v4 port, five clients queued.
fn tape(name: &str) -> Tape {
    let text = std::fs::read(fixtures().join(name)).expect("read tape");
    Tape::from_json(&text).expect("parse tape")
}

fn port_query(port: u16) -> Query {
    Query::new(vec![Target::port(None, port)])
}

// ---------------------------------------------------------------------------
// The fake /proc tree

/// A process in the fake tree.
struct Proc {
    pid: u32,
    ppid: u32,
    comm: &'static str,
    uid: u32,
    cmdline: &'static [&'static str],
    /// (fd, socket inode)
    sockets: Vec<(u32, u64)>,
}

/// A directory laid out like the parts of /proc a pass reads: `self/ns/net`,
/// `sys/net/core/somaxconn`, and per process `stat`, `status`, `comm`,
/// `cmdline`, `fd/N` links and `ns/net`. Every `ns/net` leads to one file,
/// the tree's only network namespace. Removed on drop.
struct FakeProc {
    root: PathBuf,
}

impl FakeProc {
    fn new(name: &str) -> FakeProc {
        let root =
            std::env::temp_dir().join(format!("sockmap-fakeproc-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("self/ns")).expect("mkdir self/ns");
        std::fs::write(root.join("netns"), b"").expect("write netns");
        symlink("../../netns", root.join("self/ns/net")).expect("link self/ns/net");
        std::fs::create_dir_all(root.join("sys/net/core")).expect("mkdir sys");
        std::fs::write(
            root.join("sys/net/core/somaxconn"),
            format!("{SOMAXCONN}\n"),
        )
        .expect("write somaxconn");
        FakeProc { root }
    }

    /// The namespace every process here is in (the nsfs inode a pass reports).
    fn netns(&self) -> u64 {
        std::fs::metadata(self.root.join("netns"))
            .expect("stat netns")
            .ino()
    }

    fn add(&self, p: &Proc) {
        let dir = self.root.join(p.pid.to_string());
        std::fs::create_dir_all(dir.join("fd")).expect("mkdir fd");
        std::fs::create_dir_all(dir.join("ns")).expect("mkdir ns");
        symlink("../../netns", dir.join("ns/net")).expect("link ns/net");
        symlink("/dev/null", dir.join("fd/0")).expect("link fd/0");
        for (fd, inode) in &p.sockets {
            symlink(format!("socket:[{inode}]"), dir.join(format!("fd/{fd}"))).expect("link fd");
        }
        let (pid, ppid, comm, uid) = (p.pid, p.ppid, p.comm, p.uid);
        // proc(5), field by field: pid (comm) state ppid pgrp sid tty_nr tpgid flags
        // minflt cminflt majflt cmajflt utime stime cutime cstime priority
        // nice num_threads itrealvalue starttime vsize rss rsslim
        // startcode endcode startstack kstkesp kstkeip signal blocked
        // sigignore sigcatch wchan nswap cnswap exit_signal processor
        // rt_priority policy delayacct_blkio_ticks guest_time cguest_time
        // start_data end_data start_brk arg_start arg_end env_start
        // env_end exit_code
        let stat = format!(
            "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 1 1 0 0 20 0 1 0 \
             5000 10000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 \
             0 0 0 0 0 0 0 0\n"
        );
        std::fs::write(dir.join("stat"), stat).expect("write stat");
        let status = format!(
            "Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\n\
             Pid:\t{pid}\nPPid:\t{ppid}\nTracerPid:\t0\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n\
             Gid:\t{uid}\t{uid}\t{uid}\t{uid}\nFDSize:\t64\nGroups:\t\nThreads:\t1\n\
             SigQ:\t0/62811\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
             SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n\
             SigCgt:\t0000000000000000\nCapInh:\t0000000000000000\n\
             CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
        );
        std::fs::write(dir.join("status"), status).expect("write status");
        std::fs::write(dir.join("comm"), format!("{comm}\n")).expect("write comm");
        let mut cmdline = Vec::new();
        for arg in p.cmdline {
            cmdline.extend_from_slice(arg.as_bytes());
            cmdline.push(0);
        }
        std::fs::write(dir.join("cmdline"), cmdline).expect("write cmdline");
    }

    /// Move process `pid` into the namespace whose nsfs file is `name`
    /// (made if new); returns that namespace's key.
    fn move_to_netns(&self, pid: u32, name: &str) -> NsKey {
        let file = self.root.join(name);
        if !file.exists() {
            std::fs::write(&file, b"").expect("write netns file");
        }
        let link = self.root.join(format!("{pid}/ns/net"));
        std::fs::remove_file(&link).expect("unlink ns/net");
        symlink(format!("../../{name}"), &link).expect("link ns/net");
        let st = std::fs::metadata(&file).expect("stat netns file");
        NsKey {
            dev: st.dev(),
            ino: st.ino(),
        }
    }

    /// The process exits.
    fn remove(&self, pid: u32) {
        std::fs::remove_dir_all(self.root.join(pid.to_string())).expect("remove pid dir");
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const SERVE: &[&str] = &["sockmap", "serve", "--workers", "2", "--stall"];
const SERVER6: &[&str] = &["server6", "--defer-accept"];

/// The holders the tests give the recorded sockets: the v4 listener is
/// shared by a forked server (parent 4001, worker 4002, both fd 3); one
/// process, 5001, holds the v6 (fd 7) and the dual (fd 8) listeners;
/// 6001 holds no socket.
fn fake_proc(name: &str, l: &Listeners) -> FakeProc {
    let fake = FakeProc::new(name);
    for p in [
        serve_proc(4001, 1, l),
        serve_proc(4002, 4001, l),
        Proc {
            pid: 5001,
            ppid: 1,
            comm: "server6",
            uid: 1000,
            cmdline: SERVER6,
            sockets: vec![(7, l.v6.inode), (8, l.dual.inode)],
        },
        Proc {
            pid: 6001,
            ppid: 1,
            comm: "bystander",
            uid: 1000,
            cmdline: &["bystander"],
            sockets: Vec::new(),
        },
    ] {
        fake.add(&p);
    }
    fake
}

fn serve_proc(pid: u32, ppid: u32, l: &Listeners) -> Proc {
    Proc {
        pid,
        ppid,
        comm: "sockmap",
        uid: 0,
        cmdline: SERVE,
        sockets: vec![(3, l.v4.inode)],
    }
}

fn replay_collector(fake: &FakeProc, replay: &Replay) -> Collector {
    Collector::from_source(
        Source::Recorded(replay.clone()),
        fake.root.clone(),
        NetnsScope::Own,
    )
    .expect("a collector over the recording")
}

// ---------------------------------------------------------------------------
// What a pass asks

fn asked(netns: u64, proto: Proto, family: Family, states: u32, port: u16) -> Asked {
    Asked {
        netns,
        proto,
        family,
        states,
        ports: Some(vec![port]),
        answered: true,
    }
}

/// The socket dumps of a pass for a port (a bare port means TCP): the
/// listeners of both families, filtered to the port in the kernel.
fn socket_dumps(netns: u64, port: u16) -> Vec<Asked> {
    vec![
        asked(netns, Proto::Tcp, Family::Inet, LISTEN, port),
        asked(netns, Proto::Tcp, Family::Inet6, LISTEN, port),
    ]
}

fn syn_dumps(asked: &[Asked]) -> Vec<(Family, Option<Vec<u16>>)> {
    asked
        .iter()
        .filter(|a| a.states == SYN_RECV)
        .map(|a| (a.family, a.ports.clone()))
        .collect()
}

fn holder_pids(snap: &Snapshot, inode: u64) -> Vec<(u32, u32)> {
    snap.holders
        .get(&Inode(inode))
        .map(|v| v.iter().map(|h| (h.pid, h.fd)).collect())
        .unwrap_or_default()
}

fn sorted(mut v: Vec<RequestSock>) -> Vec<RequestSock> {
    v.sort_by_key(|r| (r.family, r.local_addr, r.local_port));
    v
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn a_recorded_pass_finds_the_forked_servers_listener_and_both_holders() {
    let l = listeners();
    let fake = fake_proc("v4", &l);
    let first = tape("first.tape.json");
    let replay = Replay::new(first.clone());
    let mut c = replay_collector(&fake, &replay);
    let snap = c.snapshot(&port_query(l.v4.port)).expect("snapshot");

    assert_eq!(snap.sockets.len(), 1, "{:?}", snap.sockets);
    let s = &snap.sockets[0];
    assert_eq!(s.inode, Inode(l.v4.inode));
    assert_eq!(
        (s.proto, s.family, s.state),
        (Proto::Tcp, Family::Inet, TcpState::Listen)
    );
    assert_eq!(s.local_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(s.local_port, l.v4.port);
    // Two clients queued, backlog 7 (`serve --backlog 7`).
    assert_eq!((s.rqueue, s.wqueue), (2, 7));

    let holders = &snap.holders[&Inode(l.v4.inode)];
    assert_eq!(holder_pids(&snap, l.v4.inode), vec![(4001, 3), (4002, 3)]);
    assert_eq!(holders[0].ppid, Some(1));
    assert_eq!(holders[1].ppid, Some(4001));
    for h in holders {
        assert_eq!(h.comm.as_bytes(), b"sockmap");
        assert_eq!(h.uid, Some(0));
        assert_eq!(h.state, Some(ProcessState::Sleeping));
        let args: Vec<&[u8]> = h
            .cmdline
            .as_ref()
            .expect("cmdline")
            .iter()
            .map(|a| a.as_bytes())
            .collect();
        assert_eq!(args, SERVE.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    }
    assert_eq!(snap.holders.len(), 1, "only the listener's holders");
    assert_eq!(snap.request_socks, Some(Vec::new()), "no SYN queue");
    assert_eq!(snap.netns.own, fake.netns());
    assert_eq!(snap.netns.of_pid.get(&4001), Some(&fake.netns()));
    assert_eq!(snap.host.somaxconn, Some(SOMAXCONN));
    assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);

    // The holders came from the fake tree, never from BPF.
    let scan = snap.scan.as_ref().expect("scan info");
    assert_eq!(scan.method, ScanMethod::Proc);
    assert!(!c.holders_from_bpf());

    let mut want = socket_dumps(first.netns, l.v4.port);
    want.push(asked(
        first.netns,
        Proto::Tcp,
        Family::Inet,
        SYN_RECV,
        l.v4.port,
    ));
    assert_eq!(replay.take_asked(), want);
}

#[test]
fn refresh_carries_holders_over_and_takes_the_new_queue_figures() {
    let l = listeners();
    let fake = fake_proc("refresh", &l);
    let replay = Replay::new(tape("first.tape.json"));
    let mut c = replay_collector(&fake, &replay);
    let query = port_query(l.v4.port);
    let first = c.snapshot(&query).expect("snapshot");
    assert_eq!(first.sockets[0].rqueue, 2);
    replay.take_asked();

    // The worker exits; refresh must not notice (it reads no /proc) and
    // keep the holders of the full pass while the sockets are the same.
    fake.remove(4002);
    let second = tape("second.tape.json");
    replay.play(second.clone());
    let snap = c.refresh(&query, &first).expect("refresh");
    assert_eq!(snap.sockets.len(), 1);
    assert_eq!(snap.sockets[0].inode, Inode(l.v4.inode));
    // Five clients queued now, same backlog.
    assert_eq!((snap.sockets[0].rqueue, snap.sockets[0].wqueue), (5, 7));
    assert_eq!(holder_pids(&snap, l.v4.inode), vec![(4001, 3), (4002, 3)]);
    assert_eq!(snap.holders, first.holders);
    assert_eq!(snap.request_socks, Some(Vec::new()));

    let mut want = socket_dumps(second.netns, l.v4.port);
    want.push(asked(
        second.netns,
        Proto::Tcp,
        Family::Inet,
        SYN_RECV,
        l.v4.port,
    ));
    assert_eq!(replay.take_asked(), want);
}

#[test]
fn update_holders_finds_a_new_fork_and_drops_an_exited_worker() {
    let l = listeners();
    let fake = fake_proc("update", &l);
    let replay = Replay::new(tape("first.tape.json"));
    let mut c = replay_collector(&fake, &replay);
    let mut snap = c.snapshot(&port_query(l.v4.port)).expect("snapshot");
    assert_eq!(holder_pids(&snap, l.v4.inode), vec![(4001, 3), (4002, 3)]);
    replay.take_asked();

    fake.remove(4002);
    fake.add(&serve_proc(4003, 4001, &l));
    c.update_holders(&mut snap).expect("update holders");
    assert_eq!(holder_pids(&snap, l.v4.inode), vec![(4001, 3), (4003, 3)]);
    let new = &snap.holders[&Inode(l.v4.inode)][1];
    assert_eq!(new.ppid, Some(4001));
    assert_eq!(new.comm.as_bytes(), b"sockmap");
    assert_eq!(snap.netns.of_pid.get(&4003), Some(&fake.netns()));
    // Only /proc was read.
    assert_eq!(replay.take_asked(), Vec::new());

    // A second update with nothing new changes nothing.
    let before = snap.holders.clone();
    c.update_holders(&mut snap).expect("update holders");
    assert_eq!(snap.holders, before);
}

#[test]
fn an_ipv6_listener_asks_only_the_ipv6_syn_queue() {
    let l = listeners();
    let fake = fake_proc("v6", &l);
    let first = tape("first.tape.json");
    let replay = Replay::new(first.clone());
    let mut c = replay_collector(&fake, &replay);
    let snap = c.snapshot(&port_query(l.v6.port)).expect("snapshot");

    assert_eq!(snap.sockets.len(), 1, "{:?}", snap.sockets);
    let s = &snap.sockets[0];
    assert_eq!(s.inode, Inode(l.v6.inode));
    assert_eq!(
        (s.family, s.local_addr),
        (Family::Inet6, IpAddr::V6(Ipv6Addr::LOCALHOST))
    );
    assert_eq!((s.rqueue, s.wqueue), (0, 5));
    assert_eq!(holder_pids(&snap, l.v6.inode), vec![(5001, 7)]);
    assert_eq!(snap.holders[&Inode(l.v6.inode)][0].uid, Some(1000));
    // Two silent clients: two request sockets, IPv6, on the listener's port.
    let req = RequestSock {
        netns: fake.netns(),
        family: Family::Inet6,
        local_addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        local_port: l.v6.port,
    };
    assert_eq!(snap.request_socks, Some(vec![req, req]));

    let asked = replay.take_asked();
    assert_eq!(&asked[..2], &socket_dumps(first.netns, l.v6.port)[..]);
    assert_eq!(
        syn_dumps(&asked),
        vec![(Family::Inet6, Some(vec![l.v6.port]))]
    );
}

#[test]
fn a_dual_stack_listener_has_both_clients_in_the_ipv6_syn_queue() {
    let l = listeners();
    let fake = fake_proc("dual", &l);
    let first = tape("first.tape.json");
    let replay = Replay::new(first.clone());
    let mut c = replay_collector(&fake, &replay);
    let snap = c.snapshot(&port_query(l.dual.port)).expect("snapshot");

    assert_eq!(snap.sockets.len(), 1, "{:?}", snap.sockets);
    let s = &snap.sockets[0];
    assert_eq!(s.inode, Inode(l.dual.inode));
    assert_eq!(
        (s.family, s.local_addr),
        (Family::Inet6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    );
    assert_eq!((s.rqueue, s.wqueue), (0, 3));
    assert_eq!(holder_pids(&snap, l.dual.inode), vec![(5001, 8)]);
    // A request socket takes its listener's family: the IPv4 client's is
    // an AF_INET6 one with the v4-mapped address.
    let req = |addr: Ipv6Addr| RequestSock {
        netns: fake.netns(),
        family: Family::Inet6,
        local_addr: IpAddr::V6(addr),
        local_port: l.dual.port,
    };
    assert_eq!(
        sorted(snap.request_socks.clone().expect("SYN queue measured")),
        vec![
            req(Ipv6Addr::LOCALHOST),
            req(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        ]
    );

    let asked = replay.take_asked();
    assert_eq!(&asked[..2], &socket_dumps(first.netns, l.dual.port)[..]);
    assert_eq!(
        syn_dumps(&asked),
        vec![(Family::Inet6, Some(vec![l.dual.port]))]
    );
}

#[test]
fn request_socks_without_a_recording_is_unmeasured_and_says_why() {
    // The entry point `watch` uses between full passes turns a failed SYN
    // dump into "not measured" plus a warning, never into an empty queue.
    let l = listeners();
    let fake = fake_proc("unmeasured", &l);
    let first = tape("first.tape.json");
    let replay = Replay::new(first.clone());
    let mut c = replay_collector(&fake, &replay);
    let snap = c.snapshot(&port_query(l.v6.port)).expect("snapshot");
    assert_eq!(snap.request_socks.as_ref().map(Vec::len), Some(2));
    replay.take_asked();

    let mut t = first;
    t.exchanges.retain(|e| !e.request.contains("states 0x1008"));
    replay.play(t);
    let mut warnings = Vec::new();
    assert_eq!(
        c.request_socks(
            &snap.sockets,
            &std::collections::HashMap::new(),
            &snap.netns,
            &mut warnings
        ),
        None
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].kind, WarningKind::SynQueueUnmeasured);
    let detail = warnings[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("AF_INET6 TCP dump, states 0x1008")
            && detail.contains("no recorded answer"),
        "{detail}"
    );
    let asked = replay.take_asked();
    assert_eq!(
        syn_dumps(&asked),
        vec![(Family::Inet6, Some(vec![l.v6.port]))]
    );
    assert!(!asked[0].answered);
}

#[test]
fn each_namespace_answers_from_its_own_recording() {
    // Process 5001 (the v6 listener's holder) lives in a second namespace.
    // Its recording: the v6 port's exchanges, as recorded, filed under a
    // namespace id of our choosing. Ours answers the same socket dumps,
    // and the unfiltered listener dumps a pass makes to look for
    // forwarders to a listener in another namespace, with the recorded
    // empty answer (NLMSG_DONE alone): no listener here.
    const OTHER: u64 = 4026532999;
    let l = listeners();
    let fake = fake_proc("netns", &l);
    let other = fake.move_to_netns(5001, "netns-b");
    let first = tape("first.tape.json");
    let on_port = format!("ports {}", l.v6.port);
    let empty = first
        .exchanges
        .iter()
        .find(|e| e.request == format!("AF_INET TCP dump, states 0x400, {on_port}"))
        .expect("the v6 port's IPv4 listener dump")
        .answer
        .clone();
    assert_eq!(empty.iter().map(Vec::len).collect::<Vec<_>>(), vec![20]);
    let mut t = Tape {
        netns: first.netns,
        exchanges: Vec::new(),
    };
    for e in first
        .exchanges
        .iter()
        .filter(|e| e.request.ends_with(&on_port))
    {
        t.exchanges.push(Exchange {
            netns: OTHER,
            ..e.clone()
        });
        if e.request.contains("states 0x400") {
            t.exchanges.push(Exchange {
                answer: empty.clone(),
                ..e.clone()
            });
        }
    }
    for family in [Family::Inet, Family::Inet6] {
        t.exchanges.push(Exchange {
            netns: first.netns,
            request: "every listener".into(),
            sent: build_request(Proto::Tcp, family, LISTEN, None, 0),
            answer: empty.clone(),
        });
    }

    // Unbound, the second namespace has no recording: an error.
    let replay = Replay::new(t.clone());
    let mut c = Collector::from_source(
        Source::Recorded(replay.clone()),
        fake.root.clone(),
        NetnsScope::All,
    )
    .expect("collector");
    let err = c
        .snapshot(&port_query(l.v6.port))
        .expect_err("no recording of the second namespace");
    assert!(err.is_not_recorded(), "{err}");

    let replay = Replay::new(t);
    replay.bind_netns(other, OTHER);
    let mut c = Collector::from_source(
        Source::Recorded(replay.clone()),
        fake.root.clone(),
        NetnsScope::All,
    )
    .expect("collector");
    let snap = c.snapshot(&port_query(l.v6.port)).expect("snapshot");
    assert_eq!(snap.sockets.len(), 1, "{:?}", snap.sockets);
    assert_eq!(snap.sockets[0].inode, Inode(l.v6.inode));
    assert_eq!(snap.netns.own, fake.netns());
    assert_eq!(snap.netns.socket(Inode(l.v6.inode)), other.ino);
    assert_eq!(holder_pids(&snap, l.v6.inode), vec![(5001, 7)]);
    assert_eq!(snap.netns.of_pid.get(&5001), Some(&other.ino));
    let req = RequestSock {
        netns: other.ino,
        family: Family::Inet6,
        local_addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        local_port: l.v6.port,
    };
    assert_eq!(snap.request_socks, Some(vec![req, req]));

    // Ours first, then the other; our listeners (forwarders to it?); the
    // SYN queue only where the listener is.
    let mut want = socket_dumps(first.netns, l.v6.port);
    want.extend(socket_dumps(OTHER, l.v6.port));
    for family in [Family::Inet, Family::Inet6] {
        want.push(Asked {
            ports: None,
            ..asked(first.netns, Proto::Tcp, family, LISTEN, 0)
        });
    }
    want.push(asked(OTHER, Proto::Tcp, Family::Inet6, SYN_RECV, l.v6.port));
    assert_eq!(replay.take_asked(), want);
}

#[test]
fn a_request_the_recording_lacks_is_an_error_not_an_empty_answer() {
    let l = listeners();
    let fake = fake_proc("missing", &l);
    let first = tape("first.tape.json");
    let without = |prefix: &str, port: u16| {
        let mut t = first.clone();
        let before = t.exchanges.len();
        t.exchanges.retain(|e| {
            !(e.request.starts_with(prefix) && e.request.ends_with(&format!("ports {port}")))
        });
        assert_eq!(
            t.exchanges.len(),
            before - 1,
            "{prefix} for {port} is recorded once"
        );
        t
    };
    let cases = [
        // The SYN queue of each family (live: "not measured", a warning).
        (
            without("AF_INET6 TCP dump, states 0x1008", l.dual.port),
            l.dual.port,
        ),
        (
            without("AF_INET TCP dump, states 0x1008", l.v4.port),
            l.v4.port,
        ),
        // IPv6 listeners (live: a host without IPv6, a warning).
        (
            without("AF_INET6 TCP dump, states 0x400", l.v4.port),
            l.v4.port,
        ),
        // IPv4 listeners (live: the pass fails).
        (
            without("AF_INET TCP dump, states 0x400", l.v6.port),
            l.v6.port,
        ),
    ];
    for (t, port) in cases {
        let replay = Replay::new(t);
        let mut c = replay_collector(&fake, &replay);
        let err = c
            .snapshot(&port_query(port))
            .expect_err("unrecorded request");
        assert!(err.is_not_recorded(), "{err}");
        assert!(err.to_string().contains("no recorded answer"), "{err}");
        let asked = replay.take_asked();
        let last = asked.last().expect("asked something");
        assert!(!last.answered, "{last:?}");
        assert!(asked[..asked.len() - 1].iter().all(|a| a.answered));
    }
}

#[test]
fn a_collector_over_another_proc_root_never_uses_bpf() {
    // Live source, fake /proc: the BPF iterator would read the real
    // kernel's tasks, not this tree, so the scanner must fall back.
    let l = listeners();
    let fake = fake_proc("live", &l);
    let mut c = Collector::from_source(Source::Live, fake.root.clone(), NetnsScope::Own)
        .expect("a live collector");
    assert!(!c.holders_from_bpf());
    let snap = c.snapshot(&port_query(l.v4.port)).expect("snapshot");
    let scan = snap.scan.expect("scan info");
    assert_eq!(scan.method, ScanMethod::Proc);
    assert_eq!(scan.fallback_reason, Some(FallbackReason::Disabled));
    let no_bpf = std::env::var_os("SOCKMAP_NO_BPF").is_some_and(|v| !v.is_empty() && v != "0");
    if !no_bpf {
        let detail = scan.detail.unwrap_or_default();
        assert!(detail.contains(&*fake.root.to_string_lossy()), "{detail}");
    }
}

// ---------------------------------------------------------------------------
// Recording

/// A listener with an explicit backlog; `defer`: TCP_DEFER_ACCEPT, so a
/// client that sends nothing stays a request socket (SYN_RECV).
fn listen(addr: &str, backlog: i32, defer: bool) -> TcpListener {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let addr: SocketAddr = addr.parse().expect("address");
    let fam = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(fam, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .expect("socket");
    rustix::net::bind(&fd, &addr).expect("bind");
    rustix::net::listen(&fd, backlog).expect("listen");
    if defer {
        use std::os::fd::AsRawFd;
        let secs: libc::c_int = 60;
        // SAFETY: setsockopt on a socket we own, with an int-sized option.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&secs as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(
            r,
            0,
            "TCP_DEFER_ACCEPT: {}",
            std::io::Error::last_os_error()
        );
    }
    TcpListener::from(fd)
}

fn inode_of(l: &TcpListener) -> u64 {
    use std::os::fd::AsRawFd;
    std::fs::metadata(format!("/proc/self/fd/{}", l.as_raw_fd()))
        .expect("stat our listener")
        .ino()
}

fn connect(addr: IpAddr, port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect((addr, port)).expect("connect"))
        .collect()
}

fn write_json(name: &str, text: &str) {
    std::fs::create_dir_all(fixtures()).expect("mkdir fixtures");
    std::fs::write(fixtures().join(name), format!("{text}\n")).expect("write fixture");
}

#[test]
#[ignore = "writes tests/fixtures/collect: run by hand to record new fixtures"]
fn record_the_collect_fixtures() {
    use common::{accept_queue_depth, socket_inodes, wait_until, ServeProc};
    assert!(common::ipv6_loopback(), "recording needs ::1");
    let lo4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);

    let serve = ServeProc::start(&[
        "--addr",
        "127.0.0.1",
        "--workers",
        "2",
        "--backlog",
        "7",
        "--stall",
    ]);
    let v6 = listen("[::1]:0", 5, true);
    // The one wildcard bind: a dual-stack listener exists only on `::`.
    // It lives while recording, and only our loopback clients connect.
    let dual = listen("[::]:0", 3, true);
    let inodes = socket_inodes(serve.pid());
    assert_eq!(inodes.len(), 1, "serve holds one socket: {inodes:?}");
    let l = Listeners {
        v4: Listener {
            port: serve.port,
            inode: inodes[0],
        },
        v6: Listener {
            port: v6.local_addr().expect("addr").port(),
            inode: inode_of(&v6),
        },
        dual: Listener {
            port: dual.local_addr().expect("addr").port(),
            inode: inode_of(&dual),
        },
    };
    for w in serve.children() {
        assert_eq!(socket_inodes(*w), inodes, "the worker shares the listener");
    }

    let mut queued = connect(lo4, l.v4.port, 2);
    let mut silent = connect(lo6, l.v6.port, 2);
    silent.extend(connect(lo4, l.dual.port, 1));
    silent.extend(connect(lo6, l.dual.port, 1));
    assert!(
        wait_until(Duration::from_secs(10), || accept_queue_depth(l.v4.port)
            == 2),
        "two clients in the accept queue"
    );

    let rec = Recorder::new();
    let mut c = Collector::from_source(Source::Recording(rec.clone()), "/proc", NetnsScope::Own)
        .expect("a recording collector");
    let syn = |c: &mut Collector, port: u16| {
        c.snapshot(&port_query(port))
            .expect("snapshot")
            .request_socks
            .map_or(0, |r| r.len())
    };
    assert!(
        wait_until(Duration::from_secs(10), || syn(&mut c, l.v6.port) == 2
            && syn(&mut c, l.dual.port) == 2),
        "the silent clients are in the SYN queues"
    );
    rec.take();

    let a = c.snapshot(&port_query(l.v4.port)).expect("snapshot v4");
    assert_eq!(a.sockets.len(), 1, "{:?}", a.sockets);
    assert_eq!((a.sockets[0].rqueue, a.sockets[0].wqueue), (2, 7));
    for port in [l.v6.port, l.dual.port] {
        let s = c.snapshot(&port_query(port)).expect("snapshot");
        assert_eq!(s.sockets.len(), 1, "{:?}", s.sockets);
        assert_eq!(s.request_socks.map(|r| r.len()), Some(2));
    }
    write_json("first.tape.json", &rec.take().to_json().expect("tape"));

    queued.extend(connect(lo4, l.v4.port, 3));
    assert!(
        wait_until(Duration::from_secs(10), || accept_queue_depth(l.v4.port)
            == 5),
        "five clients in the accept queue"
    );
    let b = c.refresh(&port_query(l.v4.port), &a).expect("refresh v4");
    assert_eq!(b.sockets[0].rqueue, 5);
    write_json("second.tape.json", &rec.take().to_json().expect("tape"));
    write_json(
        "listeners.json",
        &serde_json::to_string_pretty(&l).expect("listeners"),
    );
    drop((queued, silent, v6, dual));
    drop(serve);
}
