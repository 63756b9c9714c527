//! Unit tests of the grammar and the query methods, on literal inputs and
//! hand-written expectations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::target::query::PortFilter;

const SERVICES: &[u8] = b"http 80/tcp www\nhttps 443/tcp\nhttps 443/udp\ndomain 53/tcp\ndomain 53/udp\nsyslog 514/udp\nhttp-alt 8080/tcp\n";

fn p(s: &str) -> Result<Target, TargetError> {
    parse_with(s, &ServiceTable::parse(SERVICES))
}

fn ok(s: &str) -> Target {
    p(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn set(r: &[(u16, u16)]) -> Option<PortSet> {
    PortSet::from_ranges(r.to_vec())
}

fn inet(proto: Option<Proto>, addr: AddrMatch, ports: Option<PortSet>) -> Target {
    Target::Inet(Inet { proto, addr, ports })
}

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[test]
fn the_old_forms_still_parse() {
    assert_eq!(ok(":8000"), Target::port(None, 8000));
    assert_eq!(ok("8000"), Target::port(None, 8000));
    assert_eq!(ok("127.0.0.1:8000"), Target::port(Some(V4), 8000));
    assert_eq!(ok("[::1]:8000"), Target::port(Some(V6), 8000));
    assert_eq!(
        ok("0.0.0.0:80"),
        Target::port(Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), 80)
    );
    assert_eq!(ok("pid:1234"), Target::Pid(1234));
    assert_eq!(ok("inode:4322"), Target::Inode(4322));
}

#[test]
fn protocol_prefixes() {
    use AddrMatch::*;
    assert_eq!(ok("udp:53"), inet(Some(Proto::Udp), Any, set(&[(53, 53)])));
    assert_eq!(ok("udp::53"), inet(Some(Proto::Udp), Any, set(&[(53, 53)])));
    assert_eq!(
        ok("tcp:8000"),
        inet(Some(Proto::Tcp), Any, set(&[(8000, 8000)]))
    );
    assert_eq!(
        ok("udp:127.0.0.1:53"),
        inet(Some(Proto::Udp), Exact(V4), set(&[(53, 53)]))
    );
    assert_eq!(
        ok("udp:[::1]:53"),
        inet(Some(Proto::Udp), Exact(V6), set(&[(53, 53)]))
    );
    assert_eq!(ok("udp:127.0.0.1"), inet(Some(Proto::Udp), Exact(V4), None));
    assert_eq!(
        ok("udp:*:53"),
        inet(Some(Proto::Udp), Wildcard, set(&[(53, 53)]))
    );
    // Service names follow the prefix's protocol.
    assert_eq!(
        ok("udp:domain"),
        inet(Some(Proto::Udp), Any, set(&[(53, 53)]))
    );
    assert_eq!(
        ok("udp:syslog"),
        inet(Some(Proto::Udp), Any, set(&[(514, 514)]))
    );
}

#[test]
fn services_ranges_and_lists() {
    use AddrMatch::*;
    assert_eq!(ok(":http"), Target::port(None, 80));
    assert_eq!(ok(":www"), Target::port(None, 80));
    assert_eq!(ok("https"), Target::port(None, 443));
    assert_eq!(ok(":http-alt"), Target::port(None, 8080));
    assert_eq!(ok(":8000-8010"), inet(None, Any, set(&[(8000, 8010)])));
    assert_eq!(ok(":80,443"), inet(None, Any, set(&[(80, 80), (443, 443)])));
    assert_eq!(ok("8001,8000"), inet(None, Any, set(&[(8000, 8001)])));
    assert_eq!(
        ok(":http,https,8000-8002"),
        inet(None, Any, set(&[(80, 80), (443, 443), (8000, 8002)]))
    );
    assert_eq!(
        ok("127.0.0.1:80,443"),
        inet(None, Exact(V4), set(&[(80, 80), (443, 443)]))
    );
    assert_eq!(ok(":1-65535"), inet(None, Any, set(&[(1, 65535)])));
    assert_eq!(ok(":7-7"), Target::port(None, 7));
}

#[test]
fn wildcards_and_bare_addresses() {
    use AddrMatch::*;
    assert_eq!(ok("*:2024"), inet(None, Wildcard, set(&[(2024, 2024)])));
    assert_eq!(ok("*"), inet(None, Wildcard, None));
    assert_eq!(
        ok("[::]:80"),
        inet(
            None,
            Exact(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            set(&[(80, 80)])
        )
    );
    assert_eq!(ok("127.0.0.1"), inet(None, Exact(V4), None));
    assert_eq!(ok("::1"), inet(None, Exact(V6), None));
    assert_eq!(ok("[::1]"), inet(None, Exact(V6), None));
    assert_eq!(
        ok("::"),
        inet(None, Exact(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), None)
    );
    assert_eq!(
        ok("fe80::1"),
        inet(None, Exact("fe80::1".parse().expect("addr")), None)
    );
}

#[test]
fn unix_comm_netns() {
    assert_eq!(
        ok("unix:/run/php/fpm.sock"),
        Target::Unix(UnixName::Path("/run/php/fpm.sock".into()))
    );
    assert_eq!(
        ok("unix:rel/a.sock"),
        Target::Unix(UnixName::Path("rel/a.sock".into()))
    );
    assert_eq!(
        ok("unix:@uwsgi"),
        Target::Unix(UnixName::Abstract("uwsgi".into()))
    );
    assert_eq!(ok("comm:nginx"), Target::Comm("nginx".into()));
    assert_eq!(ok("comm:kworker/0:1"), Target::Comm("kworker/0:1".into()));
    assert_eq!(
        ok("comm:123456789012345"),
        Target::Comm("123456789012345".into())
    );
    assert_eq!(
        ok("netns:blue"),
        Target::Netns(NetnsRef::Name("blue".into()))
    );
    assert_eq!(
        ok("netns:4026531840"),
        Target::Netns(NetnsRef::Inode(4_026_531_840))
    );
}

#[test]
fn bad_targets_name_the_bad_part() {
    let long_path = format!("unix:/{}", "a".repeat(108));
    let long_abstract = format!("unix:@{}", "a".repeat(108));
    let cases: &[(&str, &str)] = &[
        (":99999", "invalid port '99999': ports are 1 to 65535"),
        (":0", "invalid port '0'"),
        ("0", "invalid port '0'"),
        (":", "missing port after ':'"),
        ("foo:80", "invalid address 'foo'"),
        ("1.2.3:80", "invalid IPv4 address '1.2.3'"),
        ("1.2.3", "invalid IPv4 address '1.2.3'"),
        ("[::1", "unclosed '['"),
        ("[::1]80", "not '80'"),
        ("[zz]:80", "invalid IPv6 address 'zz'"),
        (
            "::1:80",
            "ambiguous '::1:80': write [::1]:80 for port 80, or [::1:80] for the address",
        ),
        (":::", "brackets"),
        ("pid:abc", "invalid pid 'abc'"),
        ("pid:0", "invalid pid '0'"),
        ("inode:99999999999", "32-bit"),
        ("", "expected a port"),
        (":80a", "invalid port '80a'"),
        (
            ":8010-8000",
            "reversed port range '8010-8000': write the lower port first, 8000-8010",
        ),
        (":0-10", "invalid port '0'"),
        (":1-65536", "invalid port '65536'"),
        (":80-", "invalid port '80-'"),
        (":-80", "invalid port '-80'"),
        (":80,", "empty item in the port list '80,'"),
        (",80", "empty item in the port list ',80'"),
        (":80,,443", "empty item"),
        (":htp", "unknown service 'htp': not in /etc/services"),
        (
            ":syslog",
            "service 'syslog' is udp only in /etc/services, not tcp",
        ),
        ("udp:http", "service 'http' is tcp only"),
        ("localhost", "unknown service 'localhost'"),
        ("udp:", "missing port or address after 'udp:'"),
        (
            "tcp:pid:5",
            "'tcp:' goes before a port or an address, not 'pid:'",
        ),
        ("udp:unix:/x", "not 'unix:'"),
        ("udp:tcp:80", "not 'tcp:'"),
        ("TCP:80", "invalid address 'TCP'"),
        ("unix:", "missing path after 'unix:'"),
        ("unix:@", "missing abstract name"),
        (&long_path, "is 109 bytes: at most 108"),
        (&long_abstract, "is 108 bytes: at most 107"),
        ("comm:", "missing command name"),
        (
            "comm:php-fpm-worker-pool",
            "is 19 bytes: the kernel keeps 15, so write 'comm:php-fpm-worker-'",
        ),
        ("netns:", "missing namespace"),
        ("netns:a/b", "invalid namespace name 'a/b'"),
        ("netns:..", "invalid namespace name '..'"),
        ("netns:0", "invalid namespace inode '0'"),
        ("netns:99999999999", "namespace inodes are 32-bit"),
        ("*:", "missing port"),
        ("*:x y", "invalid port 'x y'"),
    ];
    for (input, needle) in cases {
        let e = p(input).expect_err(input).to_string();
        assert!(e.contains(needle), "{input}: {e} lacks {needle}");
        assert!(e.starts_with("invalid target"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn display_round_trips_and_prefers_short_forms() {
    let cases = [
        ("udp::53", "udp:53"),
        ("tcp:8000", "tcp:8000"),
        (":http", ":80"),
        ("8001,8000,8002", ":8000-8002"),
        ("udp:[::1]", "udp:[::1]"),
        ("::1", "[::1]"),
        ("*:2024", "*:2024"),
        ("*", "*"),
        ("unix:@x", "unix:@x"),
        ("netns:7", "netns:7"),
        ("comm:a b", "comm:a b"),
    ];
    for (input, shown) in cases {
        let t = ok(input);
        assert_eq!(t.to_string(), shown, "{input}");
        assert_eq!(ok(shown), t, "{input}");
    }
}

#[test]
fn protos_wanted() {
    let q = |ts: &[&str]| Query::new(ts.iter().map(|t| ok(t)).collect());
    assert_eq!(q(&[":80"]).protos(), vec![Proto::Tcp]);
    assert_eq!(
        q(&["udp:53", "unix:/x"]).protos(),
        vec![Proto::Udp, Proto::Unix]
    );
    assert_eq!(q(&["pid:1"]).protos(), Proto::ALL.to_vec());
    assert_eq!(q(&["comm:nginx"]).protos(), Proto::ALL.to_vec());
    assert_eq!(q(&[]).protos(), Proto::ALL.to_vec());
    assert_eq!(q(&["netns:blue"]).protos(), Proto::ALL.to_vec());
    assert_eq!(q(&["netns:blue", "udp:53"]).protos(), vec![Proto::Udp]);
    assert_eq!(
        q(&["pid:1"]).with_only_protos(&[Proto::Unix]).protos(),
        vec![Proto::Unix]
    );
    assert_eq!(
        q(&["udp:53"]).with_only_protos(&[Proto::Tcp]).protos(),
        vec![]
    );
    // A bare port takes the protocols -t/-u name, as `ss -u` does.
    let lo = std::net::IpAddr::from([127, 0, 0, 1]);
    let u = q(&[":53"]).with_only_protos(&[Proto::Udp]);
    assert_eq!(u.protos(), vec![Proto::Udp]);
    assert!(u.matches_inet(Proto::Udp, lo, 53, 1));
    assert!(!u.matches_inet(Proto::Tcp, lo, 53, 1));
    let tu = q(&[":53"]).with_only_protos(&[Proto::Tcp, Proto::Udp, Proto::Unix]);
    assert_eq!(tu.protos(), vec![Proto::Tcp, Proto::Udp]);
    assert!(!q(&[":53"]).matches_inet(Proto::Udp, lo, 53, 1));
}

#[test]
fn port_filters_per_protocol() {
    let q = |ts: &[&str]| Query::new(ts.iter().map(|t| ok(t)).collect());
    let ports = |r: &[(u16, u16)]| PortFilter::Ports(set(r).expect("set"));
    let m = q(&[":80", "127.0.0.1:81", "udp:53", ":8000-8010,90"]);
    assert_eq!(
        m.port_filter(Proto::Tcp),
        ports(&[(80, 81), (90, 90), (8000, 8010)])
    );
    assert_eq!(m.port_filter(Proto::Udp), ports(&[(53, 53)]));
    assert_eq!(m.port_filter(Proto::Unix), PortFilter::Nothing);
    assert_eq!(
        m.kernel_ports(),
        Some([80, 81, 90].into_iter().chain(8000..=8010).collect())
    );
    // An address without a port, pid:, comm: or inode: need every port.
    assert_eq!(
        q(&[":80", "127.0.0.1"]).port_filter(Proto::Tcp),
        PortFilter::AllPorts
    );
    assert_eq!(q(&[":80", "pid:1"]).kernel_ports(), None);
    assert_eq!(
        q(&[":80", "comm:x"]).port_filter(Proto::Udp),
        PortFilter::AllPorts
    );
    assert_eq!(q(&[]).kernel_ports(), None);
    // A wide range stays a range; as a list it is too long.
    assert_eq!(q(&[":1-1000"]).port_filter(Proto::Tcp), ports(&[(1, 1000)]));
    assert_eq!(q(&[":1-1000"]).kernel_ports(), None);
    assert_eq!(q(&[":1-64"]).kernel_ports().map(|v| v.len()), Some(64));
    assert_eq!(q(&["unix:/x"]).port_filter(Proto::Tcp), PortFilter::Nothing);
    assert_eq!(
        q(&["unix:/x"]).port_filter(Proto::Unix),
        PortFilter::AllPorts
    );
}

#[test]
fn inet_matching() {
    let q = |ts: &[&str]| Query::new(ts.iter().map(|t| ok(t)).collect());
    let v4any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let v6any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let exact = q(&["127.0.0.1:80"]);
    assert!(exact.matches_local(V4, 80, 1));
    assert!(!exact.matches_local(v4any, 80, 1));
    assert!(!exact.matches_inet(Proto::Udp, V4, 80, 1));
    let star = q(&["*:80"]);
    assert!(star.matches_local(v4any, 80, 1) && star.matches_local(v6any, 80, 1));
    assert!(!star.matches_local(V4, 80, 1));
    let v6wild = q(&["[::]:80"]);
    assert!(v6wild.matches_local(v6any, 80, 1) && !v6wild.matches_local(v4any, 80, 1));
    let bare = q(&["127.0.0.1"]);
    assert!(bare.matches_local(V4, 1, 1) && bare.matches_local(V4, 65535, 1));
    assert!(!bare.matches_local(V6, 1, 1));
    let range = q(&["udp:5000-5002"]);
    assert!(range.matches_inet(Proto::Udp, V6, 5001, 1));
    assert!(!range.matches_inet(Proto::Udp, V6, 5003, 1));
    assert!(!range.matches_local(V6, 5001, 1));
    assert!(q(&["inode:9"]).matches_inet(Proto::Udp, V4, 1, 9));
    assert!(!Query::default().matches_local(V4, 80, 1));
    assert!(Query::default().matches_inet(Proto::Tcp, V4, 80, 1));
    assert!(q(&["netns:blue"]).matches_inet(Proto::Udp, V4, 80, 1));
}

#[test]
fn unix_matching_on_kernel_bytes() {
    let q = Query::new(vec![ok("unix:/run/a.sock"), ok("unix:@ab")]);
    assert!(q.matches_unix(b"/run/a.sock", 1));
    assert!(!q.matches_unix(b"/run/a.sock2", 1));
    assert!(q.matches_unix(b"\0ab", 1));
    assert!(!q.matches_unix(b"@ab", 1)); // a path named "@ab" is not the abstract name
    assert!(!q.matches_unix(b"\0a", 1));
    assert!(!q.matches_unix(b"", 1));
    assert!(Query::new(vec![ok("inode:5")]).matches_unix(b"", 5));
    assert!(!Query::new(vec![ok(":80")]).matches_unix(b"/run/a.sock", 1));
    assert_eq!(q.unix_names().count(), 2);
}

#[test]
fn accessors() {
    let q = Query::new(vec![
        ok("comm:nginx"),
        ok("pid:7"),
        ok("netns:blue"),
        ok("netns:12"),
    ]);
    assert_eq!(q.comms().collect::<Vec<_>>(), vec!["nginx"]);
    assert_eq!(q.pids().collect::<Vec<_>>(), vec![7]);
    assert_eq!(
        q.netns().cloned().collect::<Vec<_>>(),
        vec![NetnsRef::Name("blue".into()), NetnsRef::Inode(12)]
    );
    assert!(q.wants_all_states());
    assert!(!Query::new(vec![ok("127.0.0.1")]).wants_all_states());
    assert_eq!(q.to_string(), "comm:nginx pid:7 netns:blue netns:12");
}

#[test]
fn no_service_table_refuses_names() {
    let e = parse(":http").expect_err("no table").to_string();
    assert!(e.contains("unknown service 'http'"), "{e}");
    assert_eq!(parse(":80"), Ok(Target::port(None, 80)));
}
