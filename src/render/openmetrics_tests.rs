//! The exposition of hand-built reports, pinned byte for byte in both
//! formats, and content negotiation on real `Accept` headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::*;
use crate::model::report::{AcceptQueue, Group, SynQueue, SCHEMA};
use crate::model::{Family as AddrFamily, Holder, HostInfo, SockType, WarningKind};

fn holder(pid: u32, comm: &str) -> Holder {
    Holder {
        pid,
        ppid: Some(1),
        comm: comm.into(),
        uid: Some(0),
        user: Some("root".into()),
        fd: 5,
        state: Some(crate::model::ProcessState::Sleeping),
        cmdline: None,
        netns: None,
    }
}

fn listener(inode: u64, addr: IpAddr, port: u16, depth: u32, backlog: u32) -> SocketReport {
    SocketReport {
        inode: Inode(inode),
        cookie: inode,
        proto: Proto::Tcp,
        sock_type: SockType::Stream,
        family: if addr.is_ipv4() {
            AddrFamily::Inet
        } else {
            AddrFamily::Inet6
        },
        state: TcpState::Listen,
        local_addr: Some(addr),
        local_port: Some(port),
        remote_addr: None,
        remote_port: None,
        path: None,
        unix_name: None,
        path_status: None,
        vfs: None,
        peer: None,
        uid: Some(0),
        accept_queue: Some(AcceptQueue { depth, backlog }),
        syn_queue: None,
        recv_q: None,
        send_q: None,
        drops: None,
        rcvbuf: None,
        reuseport: None,
        backlog_clamped: Some(false),
        holders: Vec::new(),
        waiters: Vec::new(),
        netns: Default::default(),
        forward: None,
    }
}

fn group(addr: IpAddr, port: u16, kind: GroupKind, inodes: &[u64], holders: usize) -> Group {
    Group {
        netns: 0,
        proto: Proto::Tcp,
        local_addr: Some(addr),
        local_port: Some(port),
        path: None,
        kind,
        inodes: inodes.iter().map(|i| Inode(*i)).collect(),
        holders,
        holders_complete: true,
        verdict: String::new(),
    }
}

/// A forked server on 127.0.0.1:8000 (one socket, three processes) and a
/// SO_REUSEPORT pair on [::]:9000, one of them with nobody holding it.
fn report() -> Report {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let mut forked = listener(7288, lo, 8000, 7, 50);
    forked.syn_queue = Some(SynQueue {
        depth: 1,
        scope: SynScope::Socket,
    });
    forked.drops = Some(3);
    forked.holders = vec![
        holder(3556, "refserver"),
        holder(3558, "refserver"),
        holder(3559, "refserver"),
    ];
    let mut a = listener(9001, any6, 9000, 0, 4096);
    let mut b = listener(9002, any6, 9000, 2, 4096);
    for s in [&mut a, &mut b] {
        s.syn_queue = Some(SynQueue {
            depth: 4,
            scope: SynScope::Group,
        });
        s.drops = Some(0);
        s.reuseport = Some(true);
    }
    a.holders = vec![holder(4001, "nginx")];
    Report {
        schema: SCHEMA,
        query: "every listening TCP socket".into(),
        host: HostInfo::default(),
        sockets: vec![forked, a, b],
        groups: vec![
            group(lo, 8000, GroupKind::Shared, &[7288], 3),
            group(any6, 9000, GroupKind::Reuseport, &[9001, 9002], 1),
        ],
        warnings: vec![
            Warning::new(WarningKind::ProcessesUnreadable, 2),
            Warning::new(WarningKind::ProcessesUnreadable, 1),
            Warning::new(WarningKind::SynQueueUnmeasured, 1),
        ],
        namespaces: vec![],
        scan: None,
    }
}

fn exposition(report: Option<&Report>) -> Exposition<'_> {
    Exposition {
        report,
        counters: vec![HostCounters {
            netns: None,
            counters: ListenCounters {
                listen_overflows: Some(117),
                listen_drops: Some(121),
                req_q_full_drop: Some(5),
                req_q_full_do_cookies: Some(2),
                syncookies_sent: None,
            },
            udp: UdpCounters::default(),
        }],
        scrape_duration: Duration::from_micros(1500),
        scrape_errors: 0,
    }
}

const OPENMETRICS: &str = r#"# HELP sockmap_accept_queue_depth Connections waiting in the listener's accept queue (sk_ack_backlog; ss Recv-Q).
# TYPE sockmap_accept_queue_depth gauge
sockmap_accept_queue_depth{proto="tcp",local_address="127.0.0.1",local_port="8000"} 7
sockmap_accept_queue_depth{proto="tcp",local_address="::",local_port="9000",inode="9001"} 0
sockmap_accept_queue_depth{proto="tcp",local_address="::",local_port="9000",inode="9002"} 2
# HELP sockmap_accept_queue_backlog The listener's accept queue limit: listen() backlog after the somaxconn clamp (sk_max_ack_backlog; ss Send-Q). The queue overflows when depth exceeds it.
# TYPE sockmap_accept_queue_backlog gauge
sockmap_accept_queue_backlog{proto="tcp",local_address="127.0.0.1",local_port="8000"} 50
sockmap_accept_queue_backlog{proto="tcp",local_address="::",local_port="9000",inode="9001"} 4096
sockmap_accept_queue_backlog{proto="tcp",local_address="::",local_port="9000",inode="9002"} 4096
# HELP sockmap_syn_queue_depth Half-open connections (request sockets in SYN_RECV) for the listener; for a SO_REUSEPORT group one series for the whole group, without an inode label. Connections answered with syncookies are not counted.
# TYPE sockmap_syn_queue_depth gauge
sockmap_syn_queue_depth{proto="tcp",local_address="127.0.0.1",local_port="8000"} 1
sockmap_syn_queue_depth{proto="tcp",local_address="::",local_port="9000"} 4
# HELP sockmap_socket_drops Packets or connections the kernel dropped at this socket (sk_drops); for a listener mostly connections refused by a full accept queue.
# TYPE sockmap_socket_drops counter
sockmap_socket_drops_total{proto="tcp",local_address="127.0.0.1",local_port="8000"} 3
sockmap_socket_drops_total{proto="tcp",local_address="::",local_port="9000",inode="9001"} 0
sockmap_socket_drops_total{proto="tcp",local_address="::",local_port="9000",inode="9002"} 0
# HELP sockmap_socket_holders Processes holding an fd of this socket: new processes are scanned every scrape, all of /proc every 5 minutes (a socket opened by a process already running shows its holders then).
# TYPE sockmap_socket_holders gauge
sockmap_socket_holders{proto="tcp",local_address="127.0.0.1",local_port="8000"} 3
sockmap_socket_holders{proto="tcp",local_address="::",local_port="9000",inode="9001"} 1
sockmap_socket_holders{proto="tcp",local_address="::",local_port="9000",inode="9002"} 0
# HELP sockmap_socket_info Always 1: the socket's inode, its group kind (single, shared by fork, reuseport) and its holders' process names.
# TYPE sockmap_socket_info gauge
sockmap_socket_info{proto="tcp",local_address="127.0.0.1",local_port="8000",inode="7288",kind="shared",comm="refserver"} 1
sockmap_socket_info{proto="tcp",local_address="::",local_port="9000",inode="9001",kind="reuseport",comm="nginx"} 1
sockmap_socket_info{proto="tcp",local_address="::",local_port="9000",inode="9002",kind="reuseport",comm=""} 1
# HELP sockmap_tcp_listen_overflows Connections that found an accept queue full, whole namespace (TcpExt ListenOverflows).
# TYPE sockmap_tcp_listen_overflows counter
sockmap_tcp_listen_overflows_total 117
# HELP sockmap_tcp_listen_drops Connections dropped at any listener for any reason, overflows included, whole namespace (TcpExt ListenDrops).
# TYPE sockmap_tcp_listen_drops counter
sockmap_tcp_listen_drops_total 121
# HELP sockmap_tcp_syn_queue_full_drops SYNs dropped because a SYN queue was full and syncookies were off, whole namespace (TcpExt TCPReqQFullDrop).
# TYPE sockmap_tcp_syn_queue_full_drops counter
sockmap_tcp_syn_queue_full_drops_total 5
# HELP sockmap_warnings What this scrape could not see, by kind, as the count the warnings give (e.g. processes_unreadable: processes whose fds could not be read, so holders may be missing).
# TYPE sockmap_warnings gauge
sockmap_warnings{kind="processes_unreadable"} 3
sockmap_warnings{kind="syn_queue_unmeasured"} 1
# HELP sockmap_scrape_duration_seconds Time this scrape spent collecting sockets, holders and counters.
# TYPE sockmap_scrape_duration_seconds gauge
# UNIT sockmap_scrape_duration_seconds seconds
sockmap_scrape_duration_seconds 0.0015
# HELP sockmap_scrape_errors Scrapes whose collection failed since the exporter started.
# TYPE sockmap_scrape_errors counter
sockmap_scrape_errors_total 0
# EOF
"#;

#[test]
fn openmetrics_pinned() {
    let r = report();
    let got = encode(&exposition(Some(&r)), Format::OpenMetrics);
    let got = String::from_utf8(got).unwrap();
    pretty_diff(&got, OPENMETRICS);
}

/// The 0.0.4 form: counter families carry `_total` in HELP/TYPE, no UNIT, no EOF.
#[test]
fn text_format_pinned() {
    let mut r = report();
    r.sockets.truncate(1);
    r.groups.truncate(1);
    r.warnings.clear();
    let mut x = exposition(Some(&r));
    x.counters[0].counters = ListenCounters {
        listen_overflows: Some(9),
        ..ListenCounters::default()
    };
    x.scrape_errors = 1;
    let got = String::from_utf8(encode(&x, Format::Text)).unwrap();
    pretty_diff(
        &got,
        r#"# HELP sockmap_accept_queue_depth Connections waiting in the listener's accept queue (sk_ack_backlog; ss Recv-Q).
# TYPE sockmap_accept_queue_depth gauge
sockmap_accept_queue_depth{proto="tcp",local_address="127.0.0.1",local_port="8000"} 7
# HELP sockmap_accept_queue_backlog The listener's accept queue limit: listen() backlog after the somaxconn clamp (sk_max_ack_backlog; ss Send-Q). The queue overflows when depth exceeds it.
# TYPE sockmap_accept_queue_backlog gauge
sockmap_accept_queue_backlog{proto="tcp",local_address="127.0.0.1",local_port="8000"} 50
# HELP sockmap_syn_queue_depth Half-open connections (request sockets in SYN_RECV) for the listener; for a SO_REUSEPORT group one series for the whole group, without an inode label. Connections answered with syncookies are not counted.
# TYPE sockmap_syn_queue_depth gauge
sockmap_syn_queue_depth{proto="tcp",local_address="127.0.0.1",local_port="8000"} 1
# HELP sockmap_socket_drops_total Packets or connections the kernel dropped at this socket (sk_drops); for a listener mostly connections refused by a full accept queue.
# TYPE sockmap_socket_drops_total counter
sockmap_socket_drops_total{proto="tcp",local_address="127.0.0.1",local_port="8000"} 3
# HELP sockmap_socket_holders Processes holding an fd of this socket: new processes are scanned every scrape, all of /proc every 5 minutes (a socket opened by a process already running shows its holders then).
# TYPE sockmap_socket_holders gauge
sockmap_socket_holders{proto="tcp",local_address="127.0.0.1",local_port="8000"} 3
# HELP sockmap_socket_info Always 1: the socket's inode, its group kind (single, shared by fork, reuseport) and its holders' process names.
# TYPE sockmap_socket_info gauge
sockmap_socket_info{proto="tcp",local_address="127.0.0.1",local_port="8000",inode="7288",kind="shared",comm="refserver"} 1
# HELP sockmap_tcp_listen_overflows_total Connections that found an accept queue full, whole namespace (TcpExt ListenOverflows).
# TYPE sockmap_tcp_listen_overflows_total counter
sockmap_tcp_listen_overflows_total 9
# HELP sockmap_scrape_duration_seconds Time this scrape spent collecting sockets, holders and counters.
# TYPE sockmap_scrape_duration_seconds gauge
sockmap_scrape_duration_seconds 0.0015
# HELP sockmap_scrape_errors_total Scrapes whose collection failed since the exporter started.
# TYPE sockmap_scrape_errors_total counter
sockmap_scrape_errors_total 1
"#,
    );
}

#[test]
fn failed_collection_has_only_scrape_metrics() {
    let mut x = exposition(None);
    x.counters.clear();
    x.scrape_errors = 4;
    x.scrape_duration = Duration::from_millis(2);
    let got = String::from_utf8(encode(&x, Format::OpenMetrics)).unwrap();
    pretty_diff(
        &got,
        "# HELP sockmap_scrape_duration_seconds Time this scrape spent collecting sockets, holders and counters.
# TYPE sockmap_scrape_duration_seconds gauge
# UNIT sockmap_scrape_duration_seconds seconds
sockmap_scrape_duration_seconds 0.002
# HELP sockmap_scrape_errors Scrapes whose collection failed since the exporter started.
# TYPE sockmap_scrape_errors counter
sockmap_scrape_errors_total 4
# EOF
",
    );
}

/// Process names are another process's bytes: label values carry them
/// exactly, with `\`, `"` and newline escaped as the formats require.
#[test]
fn hostile_comm_is_escaped_in_label_values() {
    let mut r = report();
    r.sockets.truncate(1);
    r.groups.truncate(1);
    r.sockets[0].holders = vec![holder(1, "a\"b\\c\nd}")];
    let got = String::from_utf8(encode(&exposition(Some(&r)), Format::Text)).unwrap();
    let line = got
        .lines()
        .find(|l| l.starts_with("sockmap_socket_info{"))
        .unwrap();
    assert_eq!(
        line,
        r#"sockmap_socket_info{proto="tcp",local_address="127.0.0.1",local_port="8000",inode="7288",kind="shared",comm="a\"b\\c\nd}"} 1"#
    );
}

#[test]
fn to_text_keeps_gauges_and_renames_counters() {
    let om = "# HELP a_b Help of a_b.\n# TYPE a_b counter\na_b_total{x=\"1\"} 2\n\
              # HELP g G.\n# TYPE g gauge\n# UNIT g seconds\ng 1.5\n# EOF\n";
    assert_eq!(
        to_text(om),
        "# HELP a_b_total Help of a_b.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 2\n\
         # HELP g G.\n# TYPE g gauge\ng 1.5\n"
    );
}

#[test]
fn negotiation() {
    use Format::*;
    // Prometheus 2.x's scrape Accept header.
    let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::negotiate(Some(prom)), OpenMetrics);
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text")),
        OpenMetrics
    );
    assert_eq!(
        Format::negotiate(Some(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )),
        OpenMetrics
    );
    assert_eq!(Format::negotiate(None), Text);
    assert_eq!(Format::negotiate(Some("*/*")), Text);
    assert_eq!(Format::negotiate(Some("text/plain")), Text);
    // The client prefers the text format.
    assert_eq!(
        Format::negotiate(Some(
            "application/openmetrics-text;q=0.3,text/plain;version=0.0.4"
        )),
        Text
    );
    // q=0 means "not acceptable".
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0")),
        Text
    );
    // A version we do not write is not chosen.
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;version=2.0.0")),
        Text
    );
    assert_eq!(Format::negotiate(Some("application/json")), Text);
    assert_eq!(Format::negotiate(Some("")), Text);
}

fn pretty_diff(got: &str, want: &str) {
    if got != want {
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            if g != w {
                panic!(
                    "line {}:\n got: {g}\nwant: {w}\n\nwhole output:\n{got}",
                    i + 1
                );
            }
        }
        panic!(
            "outputs differ in length ({} vs {} lines):\n{got}",
            got.lines().count(),
            want.lines().count()
        );
    }
}

/// A UDP socket (receive queue, buffer, drops; no accept queue) and a
/// unix listener (path label instead of address and port).
#[test]
fn udp_and_unix_sockets() {
    let mut udp = listener(51, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5353, 0, 0);
    udp.proto = Proto::Udp;
    udp.sock_type = SockType::Dgram;
    udp.state = TcpState::Close;
    udp.accept_queue = None;
    udp.recv_q = Some(768);
    udp.rcvbuf = Some(212992);
    udp.drops = Some(4);
    let mut unix = listener(52, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0, 1, 128);
    unix.proto = Proto::Unix;
    unix.family = AddrFamily::Unix;
    unix.local_addr = None;
    unix.local_port = None;
    unix.path = Some("/run/x \"y\".sock".into());
    let r = Report {
        sockets: vec![udp, unix],
        groups: Vec::new(),
        warnings: Vec::new(),
        ..report()
    };
    let mut x = exposition(Some(&r));
    x.counters[0].udp = UdpCounters {
        in_errors: Some(9),
        rcvbuf_errors: Some(7),
        in6_errors: None,
        rcvbuf6_errors: Some(0),
    };
    let got = String::from_utf8(encode(&x, Format::OpenMetrics)).unwrap();
    for line in [
        r#"sockmap_receive_queue_bytes{proto="udp",local_address="0.0.0.0",local_port="5353"} 768"#,
        r#"sockmap_receive_buffer_bytes{proto="udp",local_address="0.0.0.0",local_port="5353"} 212992"#,
        r#"sockmap_socket_drops_total{proto="udp",local_address="0.0.0.0",local_port="5353"} 4"#,
        r#"sockmap_accept_queue_depth{proto="unix",path="/run/x \"y\".sock"} 1"#,
        r#"sockmap_accept_queue_backlog{proto="unix",path="/run/x \"y\".sock"} 128"#,
        r#"sockmap_socket_info{proto="unix",path="/run/x \"y\".sock",inode="52",kind="",comm=""} 1"#,
        r#"sockmap_udp_receive_errors_total{family="inet"} 9"#,
        r#"sockmap_udp_receive_buffer_errors_total{family="inet"} 7"#,
        r#"sockmap_udp_receive_buffer_errors_total{family="inet6"} 0"#,
    ] {
        assert!(got.lines().any(|l| l == line), "missing {line}\n{got}");
    }
    assert!(!got.contains(r#"sockmap_accept_queue_depth{proto="udp""#));
    assert!(!got.contains(r#"sockmap_udp_receive_errors_total{family="inet6"}"#));
}

/// Two containers each on *:8000: their series differ by the container
/// label (a name that survives a restart, not the nsfs inode), and a
/// listener in the exporter's own namespace keeps its old labels.
#[test]
fn containers_on_one_port_are_labelled_apart() {
    use crate::model::netns::{Container, Netns, Runtime};
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let in_container = |inode: u64, ns: u64, name: Option<&str>, id: &str| {
        let mut s = listener(inode, any, 8000, 0, 128);
        s.netns = Netns {
            inode: ns,
            name: None,
            container: Some(Container {
                runtime: Runtime::Docker,
                id: id.into(),
                name: name.map(String::from),
                pod: None,
            }),
        };
        s
    };
    let mut r = report();
    r.sockets = vec![
        listener(1, IpAddr::V4(Ipv4Addr::LOCALHOST), 8000, 0, 128),
        in_container(2, 201, Some("app-web"), "3f2a9c1e5b7d4a6f"),
        in_container(3, 202, None, "9b1c2d3e4f5a6b7c"),
    ];
    r.groups = vec![];
    let got = String::from_utf8(encode(&exposition(Some(&r)), Format::Text)).unwrap();
    let depth: Vec<&str> = got
        .lines()
        .filter(|l| l.starts_with("sockmap_accept_queue_depth{"))
        .collect();
    assert_eq!(
        depth,
        vec![
            r#"sockmap_accept_queue_depth{proto="tcp",local_address="127.0.0.1",local_port="8000"} 0"#,
            r#"sockmap_accept_queue_depth{proto="tcp",local_address="0.0.0.0",local_port="8000",container="app-web"} 0"#,
            r#"sockmap_accept_queue_depth{proto="tcp",local_address="0.0.0.0",local_port="8000",container="9b1c2d3e4f5a"} 0"#,
        ],
        "{got}"
    );
}
