//! `sockmap check`: evaluates the user's assertions against a `Report` and
//! says, for each, what was expected and what was found. Pure: takes the
//! report `analyze::report` built, returns a `CheckOutcome` for `render`.
//! Never talks to the kernel and never formats for a terminal.
//!
//! Assertions speak about the report's *listening* sockets: those are what
//! a health check means by "the socket(s) on :8000". An assertion about
//! queues or backlogs fails when there is no listener at all — a health
//! check must not pass because there is nothing to measure.

use std::collections::BTreeSet;
use std::net::IpAddr;

pub use crate::model::check::{Assertion, CheckOutcome, Status};
use crate::model::report::{GroupKind, Report, SocketReport, SynScope, SCHEMA};
use crate::model::Proto;

/// What `sockmap check` asserts about the target's listening sockets. With
/// no assertion set, `listening` is implied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assertions {
    pub listening: bool,
    pub holders: Option<usize>,
    pub min_holders: Option<usize>,
    pub shared: bool,
    pub reuseport: bool,
    pub max_accept_queue: Option<u32>,
    pub max_accept_ratio: Option<f64>,
    pub max_syn_queue: Option<u32>,
    pub min_backlog: Option<u32>,
    pub pid: Option<u32>,
    /// The protocol the check is about (the query is narrowed to it).
    pub proto: Option<Proto>,
    /// Every UDP receive queue holds at most this many bytes.
    pub max_recv_queue: Option<u64>,
    /// Every listener's `sk_drops` is at most this.
    pub max_drops: Option<u64>,
    /// Processes with a thread waiting on the listeners right now.
    pub acceptors: Option<usize>,
}

const NO_LISTENER: &str = "no listening socket";
const NO_QUEUE: &str = "no listener with an accept queue (TCP or unix)";
const HIDDEN_HOLDERS: &str =
    "some processes could not be read, so holders may be missing: run as root to decide";

fn addr_port(addr: Option<IpAddr>, port: Option<u16>) -> String {
    match (addr, port) {
        (Some(a), Some(port)) => crate::model::Endpoint(a, port).to_string(),
        _ => "?".to_string(),
    }
}

/// "127.0.0.1:8000 (inode 7288)", "udp 127.0.0.1:53 (inode 9)", "unix
/// /run/x.sock (inode 12)": which socket an `actual` is about.
fn which(s: &SocketReport) -> String {
    let place = match (&s.unix_name, s.proto) {
        // Display escapes the name.
        (Some(n), _) => format!("unix {n}"),
        (None, Proto::Unix) => "unix (unnamed)".to_string(),
        (None, Proto::Udp) => format!("udp {}", addr_port(s.local_addr, s.local_port)),
        (None, Proto::Tcp) => addr_port(s.local_addr, s.local_port),
    };
    format!("{place} (inode {})", s.inode)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn pid_list(pids: &BTreeSet<u32>) -> String {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    match pids.len() {
        0 => "none visible".to_string(),
        1 => format!("pid {}", list.join(", ")),
        _ => format!("pids {}", list.join(", ")),
    }
}

/// `depth / backlog`; a zero backlog (CPython's `listen(-1)`) with anything
/// waiting counts as infinitely full.
fn ratio(depth: u32, backlog: u32) -> f64 {
    if backlog == 0 {
        if depth > 0 {
            f64::INFINITY
        } else {
            0.0
        }
    } else {
        f64::from(depth) / f64::from(backlog)
    }
}

fn show_ratio(r: f64) -> String {
    if r.is_infinite() {
        "inf".to_string()
    } else {
        let s = format!("{r:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// What the assertions look at, computed once.
struct Facts<'a> {
    listeners: Vec<&'a SocketReport>,
    /// Distinct pids holding any listener.
    pids: BTreeSet<u32>,
    /// Holders may be missing: some processes could not be read.
    hidden: bool,
    /// Some network namespaces could not be entered: listeners may be missing.
    netns_hidden: bool,
}

impl<'a> Facts<'a> {
    fn new(report: &'a Report) -> Self {
        let listeners: Vec<&SocketReport> =
            report.sockets.iter().filter(|s| s.is_listener()).collect();
        let pids = listeners
            .iter()
            .flat_map(|s| s.holders.iter().map(|h| h.pid))
            .collect();
        let hidden = report.warnings.iter().any(|w| w.kind.hides_holders());
        let netns_hidden = report
            .warnings
            .iter()
            .any(|w| w.kind == crate::model::WarningKind::NetnsNotInspected && w.count > 0);
        Facts {
            listeners,
            pids,
            hidden,
            netns_hidden,
        }
    }

    fn holders_found(&self) -> String {
        self.pids_found(&self.pids)
    }

    fn pids_found(&self, pids: &BTreeSet<u32>) -> String {
        format!("{} ({})", pids.len(), pid_list(pids))
    }

    /// A holder-count verdict. `more_could_pass`: with processes hidden,
    /// holders we could not see might make it hold, so it is unknown.
    fn holder_assertion(
        &self,
        name: &'static str,
        ok: bool,
        more_could_pass: bool,
        expected: String,
    ) -> Assertion {
        Assertion::new(name, ok, expected, self.holders_found())
            .unknown_if(self.hidden && more_could_pass, HIDDEN_HOLDERS)
    }

    /// Why no accept queue was found: no listener at all, or only UDP.
    fn no_queue(&self) -> String {
        if self.listeners.is_empty() {
            NO_LISTENER
        } else {
            NO_QUEUE
        }
        .to_string()
    }

    /// The listener with the largest `key` (the first one on a tie), among
    /// those `key` applies to (`Some`), if any.
    fn worst<K: PartialOrd>(
        &self,
        key: impl Fn(&SocketReport) -> Option<K>,
    ) -> Option<(&'a SocketReport, K)> {
        let mut best: Option<(&SocketReport, K)> = None;
        for s in &self.listeners {
            let Some(k) = key(s) else { continue };
            if best.as_ref().is_none_or(|(_, b)| k > *b) {
                best = Some((s, k));
            }
        }
        best
    }
}

/// Did the user name any assertion? If not, `--listening` is implied.
fn any_assertion(cfg: &Assertions) -> bool {
    cfg.listening
        || cfg.holders.is_some()
        || cfg.min_holders.is_some()
        || cfg.shared
        || cfg.reuseport
        || cfg.max_accept_queue.is_some()
        || cfg.max_accept_ratio.is_some()
        || cfg.max_syn_queue.is_some()
        || cfg.min_backlog.is_some()
        || cfg.pid.is_some()
        || cfg.max_recv_queue.is_some()
        || cfg.max_drops.is_some()
        || cfg.acceptors.is_some()
}

/// Evaluate every assertion in `cfg` against `report`.
pub fn evaluate(cfg: &Assertions, report: &Report) -> CheckOutcome {
    let f = Facts::new(report);
    let mut out = Vec::new();

    if cfg.listening || !any_assertion(cfg) {
        out.push(listening(&f, cfg.proto));
    }
    // Hidden holders can only add to the count seen: "holders N" with more
    // than N seen fails for certain; with fewer (or exactly N) it is unknown.
    if let Some(n) = cfg.holders {
        let seen = f.pids.len();
        let ok = seen == n && !f.hidden;
        out.push(f.holder_assertion("holders", ok, seen <= n, n.to_string()));
    }
    if let Some(n) = cfg.min_holders {
        out.push(f.holder_assertion(
            "min_holders",
            f.pids.len() >= n,
            true,
            format!("at least {n}"),
        ));
    }
    if cfg.shared {
        out.push(shared(&f));
    }
    if cfg.reuseport {
        out.push(reuseport(&f, report));
    }
    if let Some(n) = cfg.max_accept_queue {
        out.push(max_accept_queue(&f, n));
    }
    if let Some(r) = cfg.max_accept_ratio {
        out.push(max_accept_ratio(&f, r));
    }
    if let Some(n) = cfg.max_syn_queue {
        out.push(max_syn_queue(&f, n));
    }
    if let Some(n) = cfg.min_backlog {
        out.push(min_backlog(&f, n));
    }
    if let Some(pid) = cfg.pid {
        out.push(holds(&f, pid));
    }
    if let Some(n) = cfg.max_recv_queue {
        out.push(max_recv_queue(&f, n));
    }
    if let Some(n) = cfg.max_drops {
        out.push(max_drops(&f, n));
    }
    if let Some(n) = cfg.acceptors {
        out.push(acceptors(&f, report, n));
    }

    let status = out.iter().map(|a| a.status).max().unwrap_or(Status::Ok);
    CheckOutcome {
        schema: SCHEMA,
        ok: status == Status::Ok,
        status,
        target: report.query.clone(),
        assertions: out,
        warnings: report.warnings.clone(),
    }
}

fn listening(f: &Facts, proto: Option<Proto>) -> Assertion {
    let n = f.listeners.len();
    let actual = match n {
        0 => "none".to_string(),
        1 => format!("1 on {}", which(f.listeners[0])),
        n => plural(n, "listening socket", "listening sockets"),
    };
    let expected = match proto {
        None => "a listening socket".to_string(),
        Some(Proto::Udp) => "a bound unconnected UDP socket".to_string(),
        Some(Proto::Tcp) => "a listening TCP socket".to_string(),
        Some(Proto::Unix) => "a listening unix socket".to_string(),
    };
    // Nothing seen here, but namespaces we could not enter may hold it.
    let unseen_netns = f.netns_hidden && n == 0;
    Assertion::new("listening", n > 0, expected, actual).unknown_if(
        unseen_netns,
        "other network namespaces were not inspected (see warnings)",
    )
}

fn max_recv_queue(f: &Facts, n: u64) -> Assertion {
    let expected = format!("at most {n} bytes waiting");
    let worst = f
        .listeners
        .iter()
        .filter(|s| s.proto == Proto::Udp)
        .max_by_key(|s| s.recv_q.unwrap_or(0));
    match worst {
        None => Assertion::new(
            "max_recv_queue",
            false,
            expected,
            "no bound unconnected UDP socket".into(),
        ),
        Some(s) => {
            let q = s.recv_q.unwrap_or(0);
            let limit = s
                .rcvbuf
                .map_or_else(String::new, |b| format!(" of rcvbuf {b}"));
            Assertion::new(
                "max_recv_queue",
                u64::from(q) <= n,
                expected,
                format!("{q} bytes{limit} on {}", which(s)),
            )
        }
    }
}

fn max_drops(f: &Facts, n: u64) -> Assertion {
    let expected = format!("at most {n} dropped");
    if f.listeners.is_empty() {
        return Assertion::new("max_drops", false, expected, NO_LISTENER.into());
    }
    // Unix sockets have no sk_drops to speak of: only TCP and UDP count.
    let counted: Vec<&&SocketReport> = f
        .listeners
        .iter()
        .filter(|s| s.proto != Proto::Unix)
        .collect();
    if counted.is_empty() || counted.iter().any(|s| s.drops.is_none()) {
        return Assertion::new("max_drops", false, expected, "not measured".into())
            .unknown_if(!counted.is_empty(), "the kernel did not report drops");
    }
    let Some(s) = counted.iter().max_by_key(|s| s.drops.unwrap_or(0)) else {
        return Assertion::new("max_drops", false, expected, NO_LISTENER.into());
    };
    let d = s.drops.unwrap_or(0);
    Assertion::new(
        "max_drops",
        u64::from(d) <= n,
        expected,
        format!("{d} on {}", which(s)),
    )
}

/// Distinct processes with a thread blocked on a listener right now. A
/// worker busy with a request is not waiting at that instant, so this is a
/// snapshot, as every figure here is.
fn acceptors(f: &Facts, report: &Report, n: usize) -> Assertion {
    let expected = format!(
        "{} waiting on the socket",
        plural(n, "process", "processes")
    );
    if f.listeners.is_empty() {
        return Assertion::new("acceptors", false, expected, NO_LISTENER.into());
    }
    let pids: BTreeSet<u32> = f
        .listeners
        .iter()
        .flat_map(|s| s.waiters.iter().map(|w| w.pid))
        .collect();
    let unseen = f.hidden
        || report
            .warnings
            .iter()
            .any(|w| w.kind == crate::model::WarningKind::WaitersUnreadable);
    let ok = pids.len() == n && !unseen;
    Assertion::new("acceptors", ok, expected, f.pids_found(&pids)).unknown_if(
        unseen && pids.len() <= n,
        "some processes' threads could not be read: run as root to decide",
    )
}

fn shared(f: &Facts) -> Assertion {
    let expected = "1 listening socket held by more than 1 process".to_string();
    let (ok, actual) = match f.listeners.as_slice() {
        [] => (false, NO_LISTENER.to_string()),
        [s] => {
            let pids: BTreeSet<u32> = s.holders.iter().map(|h| h.pid).collect();
            let actual = format!(
                "1 socket on {} held by {}",
                which(s),
                match pids.len() {
                    0 => "no visible process".to_string(),
                    n => format!(
                        "{} ({})",
                        plural(n, "process", "processes"),
                        pid_list(&pids)
                    ),
                }
            );
            (pids.len() > 1, actual)
        }
        many => (
            false,
            format!(
                "{} (one accept queue each, not one shared)",
                plural(many.len(), "listening socket", "listening sockets")
            ),
        ),
    };
    Assertion::new("shared", ok, expected, actual)
        .unknown_if(f.hidden && f.listeners.len() == 1, HIDDEN_HOLDERS)
}

fn reuseport(f: &Facts, report: &Report) -> Assertion {
    let expected = "more than 1 listening socket on one address:port (SO_REUSEPORT)".to_string();
    let group = report
        .groups
        .iter()
        .filter(|g| g.kind == GroupKind::Reuseport)
        .max_by_key(|g| g.inodes.len());
    let (ok, actual) = match (group, f.listeners.len()) {
        (Some(g), _) => (
            true,
            format!(
                "{} on {}",
                plural(g.inodes.len(), "socket", "sockets"),
                addr_port(g.local_addr, g.local_port)
            ),
        ),
        (None, 0) => (false, NO_LISTENER.to_string()),
        (None, n) => (
            false,
            format!(
                "{}, at most 1 per address:port",
                plural(n, "listening socket", "listening sockets")
            ),
        ),
    };
    Assertion::new("reuseport", ok, expected, actual)
}

fn max_accept_queue(f: &Facts, n: u32) -> Assertion {
    let expected = format!("at most {n} waiting");
    let worst = f.worst(|s| s.accept_queue.map(|q| q.depth));
    match worst {
        None => Assertion::new("max_accept_queue", false, expected, f.no_queue()),
        Some((s, depth)) => {
            let backlog = s.accept_queue.map_or(0, |q| q.backlog);
            Assertion::new(
                "max_accept_queue",
                depth <= n,
                expected,
                format!("{depth} waiting of {backlog} on {}", which(s)),
            )
        }
    }
}

fn max_accept_ratio(f: &Facts, r: f64) -> Assertion {
    let expected = format!("depth/backlog at most {}", show_ratio(r));
    let worst = f.worst(|s| s.accept_queue.map(|q| ratio(q.depth, q.backlog)));
    match worst {
        None => Assertion::new("max_accept_ratio", false, expected, f.no_queue()),
        Some((s, worst)) => {
            let (depth, backlog) = s.accept_queue.map_or((0, 0), |q| (q.depth, q.backlog));
            Assertion::new(
                "max_accept_ratio",
                worst <= r,
                expected,
                format!("{} ({depth}/{backlog}) on {}", show_ratio(worst), which(s)),
            )
        }
    }
}

fn max_syn_queue(f: &Facts, n: u32) -> Assertion {
    let expected = format!("at most {n} half-open");
    let tcp = || f.listeners.iter().filter(|s| s.proto == Proto::Tcp);
    if tcp().next().is_none() {
        return Assertion::new("max_syn_queue", false, expected, "no TCP listener".into());
    }
    if tcp().any(|s| s.syn_queue.is_none()) {
        return Assertion::new("max_syn_queue", false, expected, "not measured".into())
            .unknown_if(true, "the SYN queue could not be measured (see warnings)");
    }
    let Some((s, depth)) = f.worst(|s| s.syn_queue.map(|q| q.depth)) else {
        return Assertion::new("max_syn_queue", false, expected, NO_LISTENER.into());
    };
    let scope = match s.syn_queue.map(|q| q.scope) {
        Some(SynScope::Group) => " (whole SO_REUSEPORT group)",
        _ => "",
    };
    Assertion::new(
        "max_syn_queue",
        depth <= n,
        expected,
        format!("{depth} on {}{scope}", which(s)),
    )
}

fn min_backlog(f: &Facts, n: u32) -> Assertion {
    let expected = format!("at least {n}");
    // The smallest backlog is the worst: key on its negation.
    let worst = f.worst(|s| s.accept_queue.map(|q| std::cmp::Reverse(q.backlog)));
    match worst {
        None => Assertion::new("min_backlog", false, expected, f.no_queue()),
        Some((s, std::cmp::Reverse(backlog))) => {
            let a = Assertion::new(
                "min_backlog",
                backlog >= n,
                expected,
                format!("backlog {backlog} on {}", which(s)),
            );
            if backlog < n && s.backlog_clamped == Some(true) {
                a.note("the backlog equals net.core.somaxconn: raise that sysctl")
            } else {
                a
            }
        }
    }
}

fn holds(f: &Facts, pid: u32) -> Assertion {
    let ok = f.pids.contains(&pid);
    let actual = if f.listeners.is_empty() {
        NO_LISTENER.to_string()
    } else {
        format!("holders: {}", pid_list(&f.pids))
    };
    Assertion::new("pid", ok, format!("pid {pid} among the holders"), actual)
        .unknown_if(f.hidden && !f.listeners.is_empty(), HIDDEN_HOLDERS)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::report::SynQueue;
    use crate::model::{Family, Holder, Inode, Snapshot, Socket, TcpState, Warning};
    use crate::target::Query;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A listener on 127.0.0.1:`port` with its queue and holding pids.
    fn sock(inode: u64, port: u16, depth: u32, backlog: u32, pids: &[u32]) -> (Socket, Vec<u32>) {
        let s = Socket {
            inode: Inode(inode),
            cookie: inode,
            proto: Proto::Tcp,
            family: Family::Inet,
            state: TcpState::Listen,
            local_addr: LO,
            local_port: port,
            remote_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            remote_port: 0,
            ifindex: 0,
            uid: Some(0),
            rqueue: depth,
            wqueue: backlog,
            drops: Some(0),
            rcvbuf: None,
            unix: None,
        };
        (s, pids.to_vec())
    }

    /// The report `analyze::report` builds for a snapshot of these sockets
    /// (SYN queues measured and empty).
    fn report(sockets: Vec<(Socket, Vec<u32>)>) -> Report {
        let mut snap = Snapshot {
            request_socks: Some(vec![]),
            ..Snapshot::default()
        };
        for (s, pids) in sockets {
            let holders = pids
                .iter()
                .map(|&pid| Holder {
                    pid,
                    ppid: Some(1),
                    comm: "srv".into(),
                    uid: Some(0),
                    user: Some("root".into()),
                    fd: 3,
                    netns: None,
                    state: None,
                    cmdline: None,
                })
                .collect();
            snap.holders.insert(s.inode, holders);
            snap.sockets.push(s);
        }
        let query = Query::new(vec![crate::target::parse(":8000").expect("a target")]);
        crate::analyze::report(&query, &snap)
    }

    /// A fork server: one socket, three processes, 7 of 50 waiting.
    fn forked() -> Report {
        report(vec![sock(7288, 8000, 7, 50, &[10, 11, 12])])
    }

    /// SO_REUSEPORT: three sockets, one process each.
    fn reuse() -> Report {
        report(vec![
            sock(1, 8000, 2, 128, &[10]),
            sock(2, 8000, 0, 128, &[11]),
            sock(3, 8000, 5, 128, &[12]),
        ])
    }

    fn nothing() -> Report {
        report(vec![])
    }

    fn cfg() -> Assertions {
        Assertions::default()
    }

    /// Evaluate and return the single assertion named `name`.
    fn one(c: &Assertions, r: &Report, name: &str) -> Assertion {
        let o = evaluate(c, r);
        assert_eq!(o.assertions.len(), 1, "{o:?}");
        let a = o.assertions[0].clone();
        assert_eq!(a.name, name);
        assert_eq!(o.ok, a.ok);
        assert!(!a.detail.contains('\n'), "one line: {}", a.detail);
        assert!(
            a.detail
                .starts_with(&format!("expected {}, found {}", a.expected, a.actual)),
            "{}",
            a.detail
        );
        a
    }

    #[test]
    fn listening_is_implied_and_passes() {
        let a = one(&cfg(), &forked(), "listening");
        assert!(a.ok);
        assert_eq!(a.actual, "1 on 127.0.0.1:8000 (inode 7288)");
        let o = evaluate(&cfg(), &forked());
        assert_eq!(o.target, ":8000");
        assert_eq!(o.schema, 2);
    }

    #[test]
    fn nothing_listening_fails_listening() {
        let a = one(&cfg(), &nothing(), "listening");
        assert!(!a.ok);
        assert_eq!(a.detail, "expected a listening socket, found none");
        let c = Assertions {
            listening: true,
            ..cfg()
        };
        assert!(!one(&c, &nothing(), "listening").ok);
    }

    #[test]
    fn listening_ignores_established_sockets() {
        let mut s = sock(5, 8000, 0, 0, &[10]);
        s.0.state = TcpState::Established;
        assert!(!one(&cfg(), &report(vec![s]), "listening").ok);
    }

    #[test]
    fn listening_is_not_implied_when_another_assertion_is_given() {
        let c = Assertions {
            holders: Some(3),
            ..cfg()
        };
        let o = evaluate(&c, &forked());
        assert_eq!(o.assertions.len(), 1);
        assert_eq!(o.assertions[0].name, "holders");
    }

    #[test]
    fn holders_exact() {
        let c = |n| Assertions {
            holders: Some(n),
            ..cfg()
        };
        let a = one(&c(3), &forked(), "holders");
        assert!(a.ok);
        assert_eq!(a.detail, "expected 3, found 3 (pids 10, 11, 12)");
        let a = one(&c(2), &forked(), "holders");
        assert!(!a.ok);
        assert_eq!(a.expected, "2");
        let r = report(vec![sock(1, 8000, 0, 10, &[10, 11])]);
        assert_eq!(
            one(&c(3), &r, "holders").detail,
            "expected 3, found 2 (pids 10, 11)"
        );
        // Distinct pids across a reuseport group, a pid counted once even
        // with two fds on the socket.
        assert!(one(&c(3), &reuse(), "holders").ok);
        let r = report(vec![sock(1, 8000, 0, 10, &[10, 10])]);
        assert!(one(&c(1), &r, "holders").ok);
    }

    fn hidden(mut r: Report) -> Report {
        r.warnings.push(Warning::new(
            crate::model::WarningKind::ProcessesUnreadable,
            47,
        ));
        r
    }

    #[test]
    fn holder_counts_with_hidden_processes_are_unknown_unless_certain() {
        let holders = |n| Assertions {
            holders: Some(n),
            ..cfg()
        };
        let min = |n| Assertions {
            min_holders: Some(n),
            ..cfg()
        };
        let r = hidden(report(vec![sock(1, 8000, 0, 10, &[10, 11])]));
        // Fewer seen than asked, or exactly as many: hidden ones may change it.
        for n in [2, 3] {
            let a = one(&holders(n), &r, "holders");
            assert_eq!(a.status, Status::Unknown, "holders {n}");
            assert!(!a.ok);
            assert!(a.detail.contains("run as root"), "{}", a.detail);
        }
        // More seen than asked: certainly wrong.
        assert_eq!(one(&holders(1), &r, "holders").status, Status::Fail);
        // At least as many seen as the minimum: certainly right.
        assert_eq!(one(&min(2), &r, "min_holders").status, Status::Ok);
        assert_eq!(one(&min(5), &r, "min_holders").status, Status::Unknown);
        let o = evaluate(&holders(3), &r);
        assert_eq!((o.status, o.ok), (Status::Unknown, false));
        assert_eq!(o.warnings.len(), 1);
        // A definite failure outranks an unknown.
        let both = Assertions {
            holders: Some(3),
            min_backlog: Some(1000),
            ..cfg()
        };
        assert_eq!(evaluate(&both, &r).status, Status::Fail);
    }

    #[test]
    fn acceptors_count_processes_waiting_now() {
        use crate::model::{WaitHow, Waiter};
        let c = |n| Assertions {
            acceptors: Some(n),
            ..cfg()
        };
        // nginx with reuseport: every worker holds every socket; two of the
        // three wait in epoll on this one right now (one with two threads).
        let mut r = forked();
        r.sockets[0].waiters = [(10, 100), (11, 110), (11, 111)]
            .into_iter()
            .map(|(pid, tid)| Waiter {
                pid,
                tid,
                how: WaitHow::Epoll { exclusive: false },
                fd: 5,
            })
            .collect();
        let a = one(&c(2), &r, "acceptors");
        assert_eq!(a.status, Status::Ok, "{}", a.detail);
        assert_eq!(a.actual, "2 (pids 10, 11)");
        assert_eq!(one(&c(3), &r, "acceptors").status, Status::Fail);
        assert_eq!(
            one(&c(3), &hidden(r.clone()), "acceptors").status,
            Status::Unknown
        );
        assert_eq!(one(&c(1), &hidden(r), "acceptors").status, Status::Fail);
        assert_eq!(one(&c(1), &nothing(), "acceptors").status, Status::Fail);
    }

    #[test]
    fn shared_and_pid_with_hidden_processes() {
        let shared = Assertions {
            shared: true,
            ..cfg()
        };
        let single = hidden(report(vec![sock(1, 8000, 0, 10, &[10])]));
        assert_eq!(one(&shared, &single, "shared").status, Status::Unknown);
        assert_eq!(one(&shared, &hidden(forked()), "shared").status, Status::Ok);
        // Two sockets are never one shared socket, whatever is hidden.
        assert_eq!(
            one(&shared, &hidden(reuse()), "shared").status,
            Status::Fail
        );
        let pid = |p| Assertions {
            pid: Some(p),
            ..cfg()
        };
        assert_eq!(one(&pid(10), &single, "pid").status, Status::Ok);
        assert_eq!(one(&pid(99), &single, "pid").status, Status::Unknown);
        assert_eq!(one(&pid(99), &forked(), "pid").status, Status::Fail);
    }

    #[test]
    fn min_holders() {
        let c = |n| Assertions {
            min_holders: Some(n),
            ..cfg()
        };
        assert!(one(&c(2), &forked(), "min_holders").ok);
        assert!(one(&c(3), &forked(), "min_holders").ok);
        let a = one(&c(4), &forked(), "min_holders");
        assert!(!a.ok);
        assert_eq!(a.detail, "expected at least 4, found 3 (pids 10, 11, 12)");
        assert!(!one(&c(1), &nothing(), "min_holders").ok);
    }

    #[test]
    fn shared() {
        let c = Assertions {
            shared: true,
            ..cfg()
        };
        let a = one(&c, &forked(), "shared");
        assert!(a.ok, "{}", a.detail);
        let single = report(vec![sock(1, 8000, 0, 10, &[10])]);
        let a = one(&c, &single, "shared");
        assert!(!a.ok);
        assert!(
            a.actual.contains("held by 1 process (pid 10)"),
            "{}",
            a.actual
        );
        let a = one(&c, &reuse(), "shared");
        assert!(!a.ok);
        assert!(a.actual.starts_with("3 listening sockets"), "{}", a.actual);
        assert_eq!(one(&c, &nothing(), "shared").actual, NO_LISTENER);
    }

    #[test]
    fn reuseport() {
        let c = Assertions {
            reuseport: true,
            ..cfg()
        };
        let a = one(&c, &reuse(), "reuseport");
        assert!(a.ok);
        assert_eq!(a.actual, "3 sockets on 127.0.0.1:8000");
        let a = one(&c, &forked(), "reuseport");
        assert!(!a.ok);
        assert_eq!(a.actual, "1 listening socket, at most 1 per address:port");
        // Two ports with one socket each is not a reuseport group.
        let two = report(vec![
            sock(1, 8000, 0, 10, &[10]),
            sock(2, 8001, 0, 10, &[10]),
        ]);
        assert!(!one(&c, &two, "reuseport").ok);
        assert!(!one(&c, &nothing(), "reuseport").ok);
    }

    #[test]
    fn max_accept_queue_names_the_worst_socket() {
        let c = |n| Assertions {
            max_accept_queue: Some(n),
            ..cfg()
        };
        assert!(one(&c(5), &reuse(), "max_accept_queue").ok);
        let a = one(&c(4), &reuse(), "max_accept_queue");
        assert!(!a.ok);
        assert_eq!(
            a.detail,
            "expected at most 4 waiting, found 5 waiting of 128 on 127.0.0.1:8000 (inode 3)"
        );
        assert!(!one(&c(100), &nothing(), "max_accept_queue").ok);
    }

    #[test]
    fn max_accept_ratio() {
        let c = |r| Assertions {
            max_accept_ratio: Some(r),
            ..cfg()
        };
        // 7/50 = 0.14
        assert!(one(&c(0.14), &forked(), "max_accept_ratio").ok);
        let a = one(&c(0.1), &forked(), "max_accept_ratio");
        assert!(!a.ok);
        assert_eq!(
            a.detail,
            "expected depth/backlog at most 0.1, found 0.14 (7/50) on 127.0.0.1:8000 (inode 7288)"
        );
        // The fullest of several sockets decides, not the deepest.
        let r = report(vec![
            sock(1, 8000, 9, 100, &[10]),
            sock(2, 8000, 4, 5, &[11]),
        ]);
        let a = one(&c(0.5), &r, "max_accept_ratio");
        assert!(!a.ok);
        assert!(a.actual.starts_with("0.8 (4/5)"), "{}", a.actual);
        assert!(!one(&c(1.0), &nothing(), "max_accept_ratio").ok);
    }

    #[test]
    fn accept_ratio_with_zero_backlog() {
        let c = |r| Assertions {
            max_accept_ratio: Some(r),
            ..cfg()
        };
        let empty = report(vec![sock(1, 8000, 0, 0, &[10])]);
        assert!(one(&c(0.0), &empty, "max_accept_ratio").ok);
        let waiting = report(vec![sock(1, 8000, 1, 0, &[10])]);
        let a = one(&c(1000.0), &waiting, "max_accept_ratio");
        assert!(!a.ok);
        assert!(a.actual.starts_with("inf (1/0)"), "{}", a.actual);
    }

    #[test]
    fn max_syn_queue() {
        let c = |n| Assertions {
            max_syn_queue: Some(n),
            ..cfg()
        };
        let mut r = forked();
        r.sockets[0].syn_queue = Some(SynQueue {
            depth: 12,
            scope: SynScope::Socket,
        });
        assert!(one(&c(12), &r, "max_syn_queue").ok);
        let a = one(&c(11), &r, "max_syn_queue");
        assert!(!a.ok);
        assert_eq!(
            a.detail,
            "expected at most 11 half-open, found 12 on 127.0.0.1:8000 (inode 7288)"
        );
        let mut g = reuse();
        g.sockets[0].syn_queue = Some(SynQueue {
            depth: 3,
            scope: SynScope::Group,
        });
        assert!(one(&c(1), &g, "max_syn_queue")
            .actual
            .ends_with("(whole SO_REUSEPORT group)"));
        assert!(!one(&c(1), &nothing(), "max_syn_queue").ok);
    }

    #[test]
    fn syn_queue_not_measured_is_unknown() {
        let mut r = forked();
        r.sockets[0].syn_queue = None;
        let c = Assertions {
            max_syn_queue: Some(1000),
            ..cfg()
        };
        let a = one(&c, &r, "max_syn_queue");
        assert!(!a.ok);
        assert_eq!(a.status, Status::Unknown);
        assert_eq!(a.actual, "not measured");
    }

    #[test]
    fn min_backlog_names_the_smallest() {
        let c = |n| Assertions {
            min_backlog: Some(n),
            ..cfg()
        };
        let r = report(vec![
            sock(1, 8000, 0, 128, &[10]),
            sock(2, 8000, 0, 64, &[11]),
        ]);
        assert!(one(&c(64), &r, "min_backlog").ok);
        let a = one(&c(100), &r, "min_backlog");
        assert!(!a.ok);
        assert_eq!(
            a.detail,
            "expected at least 100, found backlog 64 on 127.0.0.1:8000 (inode 2)"
        );
        let mut clamped = report(vec![sock(1, 8000, 0, 4096, &[10])]);
        clamped.sockets[0].backlog_clamped = Some(true);
        assert!(one(&c(10000), &clamped, "min_backlog")
            .detail
            .contains("somaxconn"));
        assert!(!one(&c(1), &nothing(), "min_backlog").ok);
    }

    #[test]
    fn pid_among_holders() {
        let c = |p| Assertions {
            pid: Some(p),
            ..cfg()
        };
        assert!(one(&c(11), &forked(), "pid").ok);
        let a = one(&c(99), &forked(), "pid");
        assert!(!a.ok);
        assert_eq!(
            a.detail,
            "expected pid 99 among the holders, found holders: pids 10, 11, 12"
        );
        assert_eq!(one(&c(1), &nothing(), "pid").actual, NO_LISTENER);
    }

    #[test]
    fn every_assertion_must_hold() {
        let c = Assertions {
            listening: true,
            holders: Some(3),
            shared: true,
            max_accept_queue: Some(1),
            ..cfg()
        };
        let o = evaluate(&c, &forked());
        assert_eq!(o.assertions.len(), 4);
        assert!(!o.ok);
        let failed: Vec<&str> = o
            .assertions
            .iter()
            .filter(|a| !a.ok)
            .map(|a| a.name)
            .collect();
        assert_eq!(failed, ["max_accept_queue"]);
    }

    #[test]
    fn json_shape() {
        let c = Assertions {
            holders: Some(3),
            ..cfg()
        };
        let v = serde_json::to_value(evaluate(&c, &forked())).expect("serializes");
        assert_eq!(v["schema"], 2);
        assert_eq!(v["ok"], true);
        assert_eq!(v["status"], "ok");
        assert_eq!(v["target"], ":8000");
        let a = &v["assertions"][0];
        assert_eq!(a["name"], "holders");
        assert_eq!(a["ok"], true);
        assert_eq!(a["status"], "ok");
        assert_eq!(a["expected"], "3");
        assert_eq!(a["actual"], "3 (pids 10, 11, 12)");
        assert!(a["detail"].is_string());
    }
}
