//! Fuzzing the TARGET grammar (a contract) with proptest: arbitrary strings
//! and near-misses never panic, every error is one line that quotes the
//! input, every accepted target prints back to text that parses to the same
//! target, and targets built from known parts parse to exactly those parts.
//! Expectations are written here from the grammar, never computed by the
//! parser's own helpers. A corpus of tricky inputs pins the answers down.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use sockmap::model::Proto;
use sockmap::target::{
    parse_with, AddrMatch, Inet, NetnsRef, Query, ServiceTable, Target, UnixName,
};

/// The service table every case uses: names and ports written out below.
const SERVICES: &[u8] = b"\
http\t80/tcp\twww\n\
https\t443/tcp\n\
https\t443/udp\n\
domain\t53/tcp\n\
domain\t53/udp\n\
syslog\t514/udp\n\
http-alt\t8080/tcp\twebcache\n";

/// (name, proto, port) for every entry above.
const KNOWN: &[(&str, Proto, u16)] = &[
    ("http", Proto::Tcp, 80),
    ("www", Proto::Tcp, 80),
    ("https", Proto::Tcp, 443),
    ("https", Proto::Udp, 443),
    ("domain", Proto::Tcp, 53),
    ("domain", Proto::Udp, 53),
    ("syslog", Proto::Udp, 514),
    ("http-alt", Proto::Tcp, 8080),
    ("webcache", Proto::Tcp, 8080),
];

fn parse(input: &str) -> Result<Target, sockmap::target::TargetError> {
    parse_with(input, &ServiceTable::parse(SERVICES))
}

/// The properties every input must satisfy, whatever it is.
fn check(input: &str) -> Result<(), TestCaseError> {
    match parse(input) {
        Ok(t) => {
            let shown = t.to_string();
            let again = parse(&shown);
            prop_assert_eq!(
                again.as_ref(),
                Ok(&t),
                "{:?} parsed to {:?}, shown as {:?}",
                input,
                t,
                shown
            );
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.starts_with("invalid target '"),
                "{:?}: {:?}",
                input,
                msg
            );
            prop_assert!(
                !msg.chars().any(char::is_control),
                "{:?}: message {:?} is not one clean line",
                input,
                msg
            );
            // Plain ASCII input is quoted exactly as given, followed by a
            // reason (how other characters are escaped is the escaping
            // function's business, tested there).
            if input
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
            {
                let head = format!("invalid target '{input}': ");
                prop_assert!(msg.starts_with(&head), "{:?}: {:?}", input, msg);
                prop_assert!(msg.len() > head.len(), "{:?}: no reason given", msg);
            }
        }
    }
    Ok(())
}

/// Pieces targets are made of, glued at random.
fn near_miss() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(":".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(".".to_string()),
        Just(",".to_string()),
        Just("-".to_string()),
        Just("*".to_string()),
        Just("@".to_string()),
        Just("/".to_string()),
        Just("pid:".to_string()),
        Just("inode:".to_string()),
        Just("tcp:".to_string()),
        Just("udp:".to_string()),
        Just("unix:".to_string()),
        Just("comm:".to_string()),
        Just("netns:".to_string()),
        Just("http".to_string()),
        Just("syslog".to_string()),
        Just("+".to_string()),
        Just(" ".to_string()),
        Just("::".to_string()),
        Just("ffff".to_string()),
        Just("x".to_string()),
        "[0-9]{1,6}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// Almost-valid forms: a real prefix, a number that may be out of range,
/// and a stray suffix now and then.
fn almost_valid() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(""),
        Just(":"),
        Just("pid:"),
        Just("inode:"),
        Just("netns:"),
        Just("udp:"),
        Just("tcp::"),
        Just("*:"),
        Just("127.0.0.1:"),
        Just("0.0.0.0:"),
        Just("[::1]:"),
        Just("[::]:"),
        Just("[::ffff:10.0.0.1]:"),
        Just(":80,"),
        Just(":1-"),
    ];
    let number = prop_oneof![
        "[0-9]{0,3}",
        "[0-9]{4,6}",
        "[0-9]{9,12}",
        (0u64..=u64::MAX).prop_map(|n| n.to_string()),
    ];
    let suffix = prop_oneof![
        4 => Just(""),
        1 => Just(":"),
        1 => Just("]"),
        1 => Just("."),
        1 => Just(","),
        1 => Just("-"),
        1 => Just("-1"),
        1 => Just(" "),
        1 => Just("a"),
    ];
    (prefix, number, suffix).prop_map(|(p, n, s)| format!("{p}{n}{s}"))
}

/// One port-list item as text, with the inclusive range it stands for.
fn port_item(proto: Proto) -> impl Strategy<Value = (String, u16, u16)> {
    let names: Vec<(&'static str, u16)> = KNOWN
        .iter()
        .filter(|(_, p, _)| *p == proto)
        .map(|(n, _, port)| (*n, *port))
        .collect();
    prop_oneof![
        (1u16..).prop_map(|p| (p.to_string(), p, p)),
        (1u16.., 1u16..).prop_map(|(a, b)| {
            let (lo, hi) = (a.min(b), a.max(b));
            (format!("{lo}-{hi}"), lo, hi)
        }),
        // Near each other, so lists overlap and touch.
        (8000u16..8010, 0u16..4).prop_map(|(lo, w)| (format!("{lo}-{}", lo + w), lo, lo + w)),
        prop::sample::select(names).prop_map(|(n, p)| (n.to_string(), p, p)),
    ]
}

/// The sorted, merged ranges of a list of inclusive ranges, computed on a
/// bitmap of every port.
fn merged(items: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut on = vec![false; 65536];
    for &(lo, hi) in items {
        for p in lo..=hi {
            on[usize::from(p)] = true;
        }
    }
    let mut out: Vec<(u16, u16)> = Vec::new();
    for p in 1..=65535u16 {
        if on[usize::from(p)] {
            match out.last_mut() {
                Some(last) if last.1 + 1 == p => last.1 = p,
                _ => out.push((p, p)),
            }
        }
    }
    out
}

fn proto_prefix() -> impl Strategy<Value = Option<Proto>> {
    prop_oneof![Just(None), Just(Some(Proto::Tcp)), Just(Some(Proto::Udp))]
}

/// An address as typed, with what it must parse to.
fn address() -> impl Strategy<Value = (String, AddrMatch)> {
    prop_oneof![
        Just((String::new(), AddrMatch::Any)),
        Just(("*".to_string(), AddrMatch::Wildcard)),
        any::<Ipv4Addr>().prop_map(|a| (a.to_string(), AddrMatch::Exact(IpAddr::V4(a)))),
        any::<Ipv6Addr>().prop_map(|a| (format!("[{a}]"), AddrMatch::Exact(IpAddr::V6(a)))),
    ]
}

fn prefix_text(p: Option<Proto>) -> &'static str {
    match p {
        None => "",
        Some(Proto::Tcp) => "tcp:",
        Some(Proto::Udp) => "udp:",
        Some(Proto::Unix) => "unix:",
    }
}

/// Strings with no NUL and no whitespace at either end (the parser trims).
fn name_text(max_bytes: usize) -> impl Strategy<Value = String> {
    "[^\\x00]{1,40}"
        .prop_map(|s: String| s.trim().to_string())
        .prop_filter("non-empty after trim", |s| !s.is_empty())
        .prop_map(move |s| {
            let mut cut = s.len().min(max_bytes);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s[..cut].trim_end().to_string()
        })
        .prop_filter("non-empty after cut", |s| !s.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_strings(s in any::<String>()) {
        check(&s)?;
    }

    #[test]
    fn printable_ascii(s in "[ -~]{0,32}") {
        check(&s)?;
    }

    #[test]
    fn near_misses(s in near_miss()) {
        check(&s)?;
    }

    #[test]
    fn almost_valid_forms(s in almost_valid()) {
        check(&s)?;
    }

    #[test]
    fn every_ipv4_address_and_port(a in any::<Ipv4Addr>(), port in any::<u16>()) {
        let input = format!("{a}:{port}");
        check(&input)?;
        prop_assert_eq!(parse(&input).is_ok(), port != 0, "{}", input);
        if port != 0 {
            prop_assert_eq!(parse(&input), Ok(Target::port(Some(IpAddr::V4(a)), port)));
        }
    }

    #[test]
    fn every_ipv6_address_and_port(a in any::<Ipv6Addr>(), port in 1u16..) {
        let input = format!("[{a}]:{port}");
        check(&input)?;
        prop_assert_eq!(parse(&input), Ok(Target::port(Some(IpAddr::V6(a)), port)));
    }

    #[test]
    fn bare_addresses_mean_every_port(a in any::<IpAddr>()) {
        let input = a.to_string();
        check(&input)?;
        let want = Target::Inet(Inet { proto: None, addr: AddrMatch::Exact(a), ports: None });
        match parse(&input) {
            Ok(t) => prop_assert_eq!(t, want),
            // Only IPv6 text whose last group reads as ":PORT" is refused.
            Err(e) => {
                prop_assert!(a.is_ipv6(), "{}: {}", input, e);
                prop_assert!(e.to_string().contains("ambiguous"), "{}", e);
            }
        }
        let bracketed = match a {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let want = Target::Inet(Inet { proto: None, addr: AddrMatch::Exact(a), ports: None });
        prop_assert_eq!(parse(&bracketed), Ok(want));
    }

    /// `[tcp:|udp:] [ADDR]:ITEM,ITEM,...` parses to exactly its parts, with
    /// the ports merged into sorted ranges.
    #[test]
    fn inet_targets_from_parts(
        (proto, (addr_text, addr), items) in proto_prefix().prop_flat_map(|p| {
            (Just(p), address(), prop::collection::vec(port_item(p.unwrap_or(Proto::Tcp)), 1..5))
        }),
    ) {
        let list: Vec<&str> = items.iter().map(|(t, _, _)| t.as_str()).collect();
        let input = format!("{}{}:{}", prefix_text(proto), addr_text, list.join(","));
        check(&input)?;
        let t = parse(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Target::Inet(inet) = t else {
            return Err(TestCaseError::fail(format!("{input}: not inet")));
        };
        prop_assert_eq!(inet.proto, proto, "{}", input);
        prop_assert_eq!(inet.addr, addr, "{}", input);
        let ranges: Vec<(u16, u16)> = items.iter().map(|(_, lo, hi)| (*lo, *hi)).collect();
        let ports = inet.ports.expect("a port list was given");
        let want = merged(&ranges);
        prop_assert_eq!(ports.ranges(), want.as_slice(), "{}", input);
    }

    #[test]
    fn reversed_and_out_of_range(lo in 1u16.., hi in 1u16.., big in 65536u64..) {
        if lo > hi {
            let e = parse(&format!(":{lo}-{hi}")).expect_err("reversed").to_string();
            let want = format!("reversed port range '{lo}-{hi}': write the lower port first, {hi}-{lo}");
            prop_assert!(e.ends_with(&want), "{}", e);
        }
        let e = parse(&format!(":{lo}-{big}")).expect_err("huge").to_string();
        let want = format!("invalid port '{big}': ports are 1 to 65535");
        prop_assert!(e.ends_with(&want), "{}", e);
        let e = parse(&format!(":0-{hi}")).expect_err("zero").to_string();
        prop_assert!(e.ends_with("invalid port '0': ports are 1 to 65535"), "{}", e);
    }

    #[test]
    fn unix_paths_and_abstract_names(name in name_text(108)) {
        // A name starting with '@' is abstract; otherwise a path.
        let input = format!("unix:{name}");
        check(&input)?;
        let want = match name.strip_prefix('@') {
            Some("") => None,
            Some(n) if n.len() <= 107 => Some(UnixName::Abstract(n.to_string())),
            Some(_) => None,
            None => Some(UnixName::Path(name.clone())),
        };
        match want {
            Some(u) => prop_assert_eq!(parse(&input), Ok(Target::Unix(u))),
            None => prop_assert!(parse(&input).is_err()),
        }
    }

    #[test]
    fn comm_names(name in name_text(40)) {
        let input = format!("comm:{name}");
        check(&input)?;
        if name.len() <= 15 {
            prop_assert_eq!(parse(&input), Ok(Target::Comm(name.clone())));
        } else {
            let e = parse(&input).expect_err("too long").to_string();
            let want = format!("is {} bytes: the kernel keeps 15", name.len());
            prop_assert!(e.contains(&want), "{}", e);
        }
    }

    #[test]
    fn netns_names_and_inodes(n in any::<u64>(), name in "[a-zA-Z_-][a-zA-Z0-9_.-]{0,20}") {
        let input = format!("netns:{n}");
        check(&input)?;
        let fits = (1..=u64::from(u32::MAX)).contains(&n);
        prop_assert_eq!(parse(&input).ok(), fits.then_some(Target::Netns(NetnsRef::Inode(n))));
        prop_assert_eq!(parse(&format!("netns:{name}")), Ok(Target::Netns(NetnsRef::Name(name.clone()))));
    }

    #[test]
    fn pids_and_inodes(n in any::<u64>()) {
        check(&format!("pid:{n}"))?;
        check(&format!("inode:{n}"))?;
        prop_assert_eq!(parse(&format!("pid:{n}")).is_ok(), (1..=4_194_304).contains(&n));
        prop_assert_eq!(parse(&format!("inode:{n}")).is_ok(), (1..=u64::from(u32::MAX)).contains(&n));
    }

    /// A query prints as its targets separated by spaces; each word parses
    /// back to the same target.
    #[test]
    fn queries_print_back(words in prop::collection::vec(prop_oneof![
        near_miss(), almost_valid(), "[a-z]{1,8}".prop_map(|s| format!("comm:{s}")),
    ], 1..6)) {
        let targets: Vec<Target> = words.iter().filter_map(|w| parse(w).ok())
            .filter(|t| !t.to_string().contains(char::is_whitespace))
            .collect();
        let q = Query::new(targets.clone());
        if targets.is_empty() {
            return Ok(());
        }
        let shown = q.to_string();
        let again: Vec<Target> = shown.split(' ').map(|w| parse(w).expect("printed target parses")).collect();
        prop_assert_eq!(again, targets);
    }
}

fn any_port(port: u16) -> Target {
    Target::port(None, port)
}

fn at(addr: &str, port: u16) -> Target {
    Target::port(Some(addr.parse().expect("test address")), port)
}

fn inet(proto: Option<Proto>, addr: AddrMatch, ranges: &[(u16, u16)]) -> Target {
    let ports = sockmap::target::PortSet::from_ranges(ranges.to_vec());
    assert!(ports.is_some() || ranges.is_empty());
    Target::Inet(Inet { proto, addr, ports })
}

/// Inputs that once surprised someone, with what they must give: a target,
/// or an error whose whole message is written out here.
#[test]
fn corpus() {
    let v6any = AddrMatch::Exact(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let ok: &[(&str, Target)] = &[
        ("8000", any_port(8000)),
        (":8000", any_port(8000)),
        (" :8000 ", any_port(8000)),
        ("\t8000\n", any_port(8000)),
        (":00080", any_port(80)),
        ("65535", any_port(65535)),
        ("1", any_port(1)),
        ("127.0.0.1:8000", at("127.0.0.1", 8000)),
        ("0.0.0.0:80", at("0.0.0.0", 80)),
        ("255.255.255.255:1", at("255.255.255.255", 1)),
        ("[::1]:8000", at("::1", 8000)),
        ("[::]:80", at("::", 80)),
        ("[::ffff:127.0.0.1]:80", at("::ffff:127.0.0.1", 80)),
        ("[0:0:0:0:0:0:0:1]:80", at("::1", 80)),
        ("pid:1", Target::Pid(1)),
        ("pid:4194304", Target::Pid(4_194_304)),
        ("inode:4294967295", Target::Inode(4_294_967_295)),
        // What the table header prints for a wildcard listener.
        ("*:2024", inet(None, AddrMatch::Wildcard, &[(2024, 2024)])),
        ("::", inet(None, v6any, &[])),
        ("[::]", inet(None, v6any, &[])),
        (
            "1.2.3.4",
            inet(None, AddrMatch::Exact("1.2.3.4".parse().expect("ip")), &[]),
        ),
        (":http", any_port(80)),
        (
            "udp:domain",
            inet(Some(Proto::Udp), AddrMatch::Any, &[(53, 53)]),
        ),
        (
            ":80,443,80",
            inet(None, AddrMatch::Any, &[(80, 80), (443, 443)]),
        ),
        (
            ":8000-8010,8005-8020",
            inet(None, AddrMatch::Any, &[(8000, 8020)]),
        ),
        (":9,8,7", inet(None, AddrMatch::Any, &[(7, 9)])),
        (
            "unix:/run/php/fpm.sock",
            Target::Unix(UnixName::Path("/run/php/fpm.sock".into())),
        ),
        ("unix:@@", Target::Unix(UnixName::Abstract("@".into()))),
        ("unix:/a b", Target::Unix(UnixName::Path("/a b".into()))),
        ("comm:nginx", Target::Comm("nginx".into())),
        ("comm:pid:1", Target::Comm("pid:1".into())),
        ("netns:blue", Target::Netns(NetnsRef::Name("blue".into()))),
        (
            "netns:4026531840",
            Target::Netns(NetnsRef::Inode(4_026_531_840)),
        ),
    ];
    for (input, want) in ok {
        assert_eq!(parse(input).as_ref(), Ok(want), "{input:?}");
    }

    let nines = "9".repeat(10_000);
    let bad: &[(&str, &str)] = &[
        ("", "expected a port (:8000, :80,443, :8000-8010, :http), an address (127.0.0.1, 127.0.0.1:80, [::1]:80, *:80), tcp:/udp: before either, unix:PATH, pid:PID, inode:INODE, comm:NAME or netns:NAME"),
        (":", "missing port after ':'"),
        (":::", "IPv6 addresses need brackets: [ADDR]:PORT"),
        (":0", "invalid port '0': ports are 1 to 65535"),
        ("0", "invalid port '0': ports are 1 to 65535"),
        (":65536", "invalid port '65536': ports are 1 to 65535"),
        ("+80", "invalid port '+80': not a number, a range LO-HI or a service name"),
        (":-1", "invalid port '-1': not a number, a range LO-HI or a service name"),
        ("0x50", "invalid port '0x50': not a number, a range LO-HI or a service name"),
        (":８０", "invalid port '８０': not a number, a range LO-HI or a service name"),
        ("localhost:80", "invalid address 'localhost': give an IP address such as 127.0.0.1, not a name"),
        ("1.2.3:80", "invalid IPv4 address '1.2.3'"),
        ("256.1.1.1:80", "invalid IPv4 address '256.1.1.1'"),
        ("1.2.3", "invalid IPv4 address '1.2.3'"),
        ("1.2.3.4:", "missing port after ':'"),
        ("1.2.3.4:80:", "IPv6 addresses need brackets: [ADDR]:PORT"),
        ("::1:80", "ambiguous '::1:80': write [::1]:80 for port 80, or [::1:80] for the address"),
        ("[::1", "unclosed '[': write IPv6 as [ADDR]:PORT"),
        ("[::1]80", "expected ':PORT' after ']', not '80'"),
        ("[::1]:", "missing port after ':'"),
        ("[]:80", "invalid IPv6 address ''"),
        ("[127.0.0.1]:80", "invalid IPv6 address '127.0.0.1'"),
        ("[fe80::1%eth0]:80", "invalid IPv6 address 'fe80::1%eth0'"),
        ("*:", "missing port after ':'"),
        ("*80", "invalid port '*80': not a number, a range LO-HI or a service name"),
        (":80,", "empty item in the port list '80,'"),
        (":8010-8000", "reversed port range '8010-8000': write the lower port first, 8000-8010"),
        (":1-2-3", "invalid port '1-2-3': not a number, a range LO-HI or a service name"),
        (":htp", "unknown service 'htp': not in /etc/services"),
        ("udp:http", "service 'http' is tcp only in /etc/services, not udp"),
        (":syslog", "service 'syslog' is udp only in /etc/services, not tcp"),
        ("tcp:", "missing port or address after 'tcp:'"),
        ("udp:pid:1", "'udp:' goes before a port or an address, not 'pid:'"),
        ("unix:", "missing path after 'unix:' (unix:/run/app.sock, or unix:@NAME)"),
        ("comm:", "missing command name after 'comm:'"),
        ("comm:0123456789abcdef", "command name '0123456789abcdef' is 16 bytes: the kernel keeps 15, so write 'comm:0123456789abcde'"),
        ("netns:", "missing namespace after 'netns:' (a name in /run/netns or an inode)"),
        ("netns:a/b", "invalid namespace name 'a/b': a name in /run/netns has no '/' and is not . or .."),
        ("netns:4294967296", "invalid namespace inode '4294967296': namespace inodes are 32-bit"),
        ("pid:", "invalid pid '': expected a positive whole number"),
        ("pid:abc", "invalid pid 'abc': expected a positive whole number"),
        ("pid:0", "invalid pid '0': must be at least 1"),
        ("pid:4194305", "invalid pid '4194305': larger than any pid"),
        ("pid:99999999999999999999999", "invalid pid '99999999999999999999999': too large"),
        ("inode:0", "invalid inode '0': must be at least 1"),
        ("inode:4294967296", "invalid inode '4294967296': socket inodes are 32-bit"),
        ("PID:1", "invalid address 'PID': give an IP address such as 127.0.0.1, not a name"),
    ];
    for (input, reason) in bad {
        let e = parse(input).expect_err(input).to_string();
        let want = format!("invalid target '{input}': {reason}");
        assert_eq!(e, want, "{input:?}");
    }
    let e = parse(&nines).expect_err("too long").to_string();
    assert!(e == format!("invalid target '{nines}': invalid port '{nines}': ports are 1 to 65535"));
    // A lone '@' is an empty abstract name, not a path.
    assert_eq!(
        parse("unix:@").expect_err("empty").to_string(),
        "invalid target 'unix:@': missing abstract name after 'unix:@'"
    );
}

/// An error is one line on a terminal: control characters in the input
/// are shown escaped (no raw control character reaches the terminal), and
/// the printable parts around them are still there.
#[test]
fn errors_are_one_line_even_for_control_characters() {
    let cases: &[(&str, &[&str])] = &[
        ("80\n:1", &["invalid target '80", ":1'"]),
        ("\u{1b}[31mred", &["invalid target '", "[31mred'"]),
        ("a\rb", &["invalid target 'a", "b'"]),
        ("comm:0123456789\u{7}abcdef", &["is 17 bytes"]),
        ("\0", &["invalid target '"]),
        ("\u{9b}2J", &["invalid target '", "2J'"]),
    ];
    for (input, parts) in cases {
        let e = parse(input).expect_err(input).to_string();
        assert!(!e.chars().any(char::is_control), "{input:?} gives {e:?}");
        for p in *parts {
            assert!(e.contains(p), "{input:?} gives {e:?}, lacking {p:?}");
        }
    }
}

/// A bare word that is no service may have been meant as a host name.
#[test]
fn bare_words_hint_at_addresses() {
    assert_eq!(
        parse("localhost").expect_err("a name").to_string(),
        "invalid target 'localhost': unknown service 'localhost': not in /etc/services \
         (an address must be an IP address such as 127.0.0.1)"
    );
}
