//! Fuzzing the TARGET parser (a contract, DESIGN.md §1) with proptest:
//! arbitrary strings and near-misses never panic, every error names the
//! input, and every accepted target prints back to text that parses to the
//! same target. A corpus of tricky inputs pins the answers down.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use sockmap::target::{parse, Target};

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
            let head = format!("invalid target '{}'", escaped(input));
            prop_assert!(
                msg.starts_with(&head),
                "{:?}: message {:?} does not start with {:?}",
                input,
                msg,
                head
            );
            prop_assert!(msg.len() > head.len() + 2, "{:?}: no reason given", msg);
        }
    }
    Ok(())
}

/// Pieces targets are made of, glued at random: digits, colons, brackets,
/// dots, the prefixes, a sign, a space, a letter.
fn near_miss() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(":".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(".".to_string()),
        Just("pid:".to_string()),
        Just("inode:".to_string()),
        Just("-".to_string()),
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
        Just("127.0.0.1:"),
        Just("0.0.0.0:"),
        Just("[::1]:"),
        Just("[::]:"),
        Just("[::ffff:10.0.0.1]:"),
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
        1 => Just(" "),
        1 => Just("a"),
    ];
    (prefix, number, suffix).prop_map(|(p, n, s)| format!("{p}{n}{s}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

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
        let want = Target::Port { addr: Some(IpAddr::V4(a)), port };
        prop_assert_eq!(parse(&input).is_ok(), port != 0, "{}", input);
        if port != 0 {
            prop_assert_eq!(parse(&input), Ok(want));
        }
    }

    #[test]
    fn every_ipv6_address_and_port(a in any::<Ipv6Addr>(), port in 1u16..) {
        let input = format!("[{a}]:{port}");
        check(&input)?;
        prop_assert_eq!(parse(&input), Ok(Target::Port { addr: Some(IpAddr::V6(a)), port }));
    }

    #[test]
    fn pids_and_inodes(n in any::<u64>()) {
        check(&format!("pid:{n}"))?;
        check(&format!("inode:{n}"))?;
        prop_assert_eq!(parse(&format!("pid:{n}")).is_ok(), (1..=4_194_304).contains(&n));
        prop_assert_eq!(parse(&format!("inode:{n}")).is_ok(), (1..=u64::from(u32::MAX)).contains(&n));
    }
}

fn any_port(port: u16) -> Target {
    Target::Port { addr: None, port }
}

fn at(addr: &str, port: u16) -> Target {
    Target::Port {
        addr: Some(addr.parse().expect("test address")),
        port,
    }
}

/// Inputs that once surprised someone, with what they must give: a target,
/// or an error whose message contains the given words.
#[test]
fn corpus() {
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
    ];
    for (input, want) in ok {
        assert_eq!(parse(input).as_ref(), Ok(want), "{input:?}");
    }

    let bad: &[(&str, &str)] = &[
        ("", "expected :PORT"),
        (" ", "expected :PORT"),
        (":", "missing port"),
        ("::", "brackets"),
        (":::", "brackets"),
        (":0", "'0'"),
        ("0", "'0'"),
        (":65536", "'65536'"),
        (":99999", "'99999'"),
        (&"9".repeat(10_000), "ports are 1 to 65535"),
        ("+80", "'+80'"),
        (":+80", "'+80'"),
        (":-1", "'-1'"),
        ("0x50", "'0x50'"),
        (":８０", "'８０'"),
        (":٣", "'٣'"),
        ("foo", "expected :PORT"),
        ("localhost:80", "not a name"),
        ("1.2.3:80", "'1.2.3'"),
        ("256.1.1.1:80", "'256.1.1.1'"),
        ("1.2.3.4", "expected :PORT"),
        ("1.2.3.4:", "missing port"),
        ("1.2.3.4:80:", "brackets"),
        ("::1:80", "brackets"),
        ("[::1", "unclosed"),
        ("[::1]", "missing ':PORT'"),
        ("[::1]80", "missing ':PORT'"),
        ("[::1]:", "missing port"),
        ("[]:80", "invalid IPv6 address ''"),
        ("[[::1]]:80", "'[::1'"),
        ("[127.0.0.1]:80", "'127.0.0.1'"),
        ("[fe80::1%eth0]:80", "'fe80::1%eth0'"),
        ("]:80", "invalid IPv4 address ']'"),
        ("pid:", "''"),
        ("pid:abc", "'abc'"),
        ("pid:0", "'0'"),
        ("pid:+1", "'+1'"),
        ("pid:4194305", "larger than any pid"),
        ("pid:99999999999999999999999", "too large"),
        ("PID:1", "'PID'"),
        ("inode:", "''"),
        ("inode:-1", "'-1'"),
        ("inode:0", "'0'"),
        ("inode:4294967296", "32-bit"),
        ("pid:1:2", "'1:2'"),
        ("\0", "expected :PORT"),
    ];
    for (input, needle) in bad {
        let e = parse(input).expect_err(input).to_string();
        assert!(
            e.starts_with(&format!("invalid target '{}'", escaped(input))),
            "{input:?}: {e}"
        );
        assert!(e.contains(needle), "{input:?}: {e:?} lacks {needle:?}");
    }
}

/// An error is one line on a terminal. target.rs echoes the input as is,
/// so a control character in it (a newline, an escape sequence) reaches
/// the terminal raw. Ignored until `TargetError` escapes the input.
#[test]
fn errors_are_one_line_even_for_control_characters() {
    for input in ["80\n:1", "\u{1b}[31mred", "a\rb"] {
        let e = parse(input).expect_err(input).to_string();
        assert!(!e.chars().any(char::is_control), "{input:?} gives {e:?}");
    }
}

/// How the error shows the input: through the one escaping function
/// (tested on its own in `sockmap::escape`).
fn escaped(s: &str) -> String {
    sockmap::escape::terminal(s).into_owned()
}
