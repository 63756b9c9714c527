//! The TARGET grammar (a contract, DESIGN.md §1) → `Target`, and the
//! `Query` built from several of them. Pure: no I/O.

use std::fmt;
use std::net::IpAddr;

/// One thing the user asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Sockets on `port`; with `addr`, only those bound to exactly that address.
    Port { addr: Option<IpAddr>, port: u16 },
    /// Every socket this process holds.
    Pid(u32),
    /// One socket, by inode.
    Inode(u64),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Port { addr: None, port } => write!(f, ":{port}"),
            Target::Port {
                addr: Some(IpAddr::V6(a)),
                port,
            } => write!(f, "[{a}]:{port}"),
            Target::Port {
                addr: Some(a),
                port,
            } => write!(f, "{a}:{port}"),
            Target::Pid(p) => write!(f, "pid:{p}"),
            Target::Inode(i) => write!(f, "inode:{i}"),
        }
    }
}

/// Why a target did not parse. The message names the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target '{}': {}", printable(input), printable(reason))]
pub struct TargetError {
    pub input: String,
    pub reason: String,
}

/// The text escaped for a terminal, so an error stays one line and
/// cannot drive the terminal.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    crate::escape::terminal(s)
}

const FORMS: &str = "expected :PORT, PORT, ADDR:PORT, [IPV6]:PORT, pid:PID or inode:INODE";

fn err(input: &str, reason: impl Into<String>) -> TargetError {
    TargetError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

fn parse_port(input: &str, s: &str) -> Result<u16, TargetError> {
    if s.is_empty() {
        return Err(err(input, "missing port after ':'"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(input, format!("invalid port '{s}': not a number")));
    }
    match s.parse::<u32>() {
        Ok(0) => Err(err(input, "invalid port '0': ports are 1 to 65535")),
        Ok(p) if p <= 65535 => Ok(p as u16),
        _ => Err(err(
            input,
            format!("invalid port '{s}': ports are 1 to 65535"),
        )),
    }
}

fn parse_id(input: &str, what: &str, s: &str) -> Result<u64, TargetError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            input,
            format!("invalid {what} '{s}': expected a positive whole number"),
        ));
    }
    match s.parse::<u64>() {
        Ok(0) => Err(err(
            input,
            format!("invalid {what} '0': must be at least 1"),
        )),
        Ok(v) => Ok(v),
        Err(_) => Err(err(input, format!("invalid {what} '{s}': too large"))),
    }
}

/// Parse one TARGET.
pub fn parse(input: &str) -> Result<Target, TargetError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(err(input, FORMS));
    }
    if let Some(rest) = s.strip_prefix("pid:") {
        let pid = parse_id(input, "pid", rest)?;
        let pid = u32::try_from(pid)
            .ok()
            .filter(|p| *p <= 4_194_304)
            .ok_or_else(|| err(input, format!("invalid pid '{rest}': larger than any pid")))?;
        return Ok(Target::Pid(pid));
    }
    if let Some(rest) = s.strip_prefix("inode:") {
        let ino = parse_id(input, "inode", rest)?;
        let ino = u32::try_from(ino).map_err(|_| {
            err(
                input,
                format!("invalid inode '{rest}': socket inodes are 32-bit"),
            )
        })?;
        return Ok(Target::Inode(u64::from(ino)));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(err(input, "unclosed '[': write IPv6 as [ADDR]:PORT"));
        };
        let ip: std::net::Ipv6Addr = addr
            .parse()
            .map_err(|_| err(input, format!("invalid IPv6 address '{addr}'")))?;
        let Some(port) = after.strip_prefix(':') else {
            return Err(err(input, "missing ':PORT' after ']'"));
        };
        return Ok(Target::Port {
            addr: Some(IpAddr::V6(ip)),
            port: parse_port(input, port)?,
        });
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Target::Port {
            addr: None,
            port: parse_port(input, s)?,
        });
    }
    if s.matches(':').count() > 1 {
        return Err(err(input, "IPv6 addresses need brackets: [ADDR]:PORT"));
    }
    let Some((addr, port)) = s.split_once(':') else {
        return Err(err(input, FORMS));
    };
    let port = parse_port(input, port)?;
    if addr.is_empty() {
        return Ok(Target::Port { addr: None, port });
    }
    let ip: std::net::Ipv4Addr = addr.parse().map_err(|_| {
        if addr.bytes().any(|b| b.is_ascii_alphabetic()) {
            err(
                input,
                format!(
                    "invalid address '{addr}': give an IP address such as 127.0.0.1, not a name"
                ),
            )
        } else {
            err(input, format!("invalid IPv4 address '{addr}'"))
        }
    })?;
    Ok(Target::Port {
        addr: Some(IpAddr::V4(ip)),
        port,
    })
}

/// What to look for, built from the targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub targets: Vec<Target>,
    /// Every TCP state, not only LISTEN (`inspect --all`). Implied by pid:/inode: targets.
    pub all_states: bool,
}

impl Query {
    pub fn new(targets: Vec<Target>) -> Self {
        Query {
            targets,
            all_states: false,
        }
    }

    pub fn with_all_states(mut self, all: bool) -> Self {
        self.all_states = all;
        self
    }

    /// The ports the kernel may filter on, or `None` when some target is not
    /// a port (or there is no target) and every socket must be dumped.
    pub fn kernel_ports(&self) -> Option<Vec<u16>> {
        let mut ports = Vec::new();
        for t in &self.targets {
            match t {
                Target::Port { port, .. } => ports.push(*port),
                _ => return None,
            }
        }
        if ports.is_empty() {
            return None;
        }
        ports.sort_unstable();
        ports.dedup();
        Some(ports)
    }

    /// Whether sockets in states other than LISTEN are wanted.
    pub fn wants_all_states(&self) -> bool {
        self.all_states
            || self
                .targets
                .iter()
                .any(|t| matches!(t, Target::Pid(_) | Target::Inode(_)))
    }

    /// The pids named by `pid:` targets.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.targets.iter().filter_map(|t| match t {
            Target::Pid(p) => Some(*p),
            _ => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Does a socket with this local address/port/inode match an address,
    /// port or inode target? (`pid:` targets match through holders, which
    /// the caller checks.)
    pub fn matches_local(&self, addr: IpAddr, port: u16, inode: u64) -> bool {
        self.targets.iter().any(|t| match t {
            Target::Port {
                addr: None,
                port: p,
            } => *p == port,
            Target::Port {
                addr: Some(a),
                port: p,
            } => *p == port && *a == addr,
            Target::Inode(i) => *i == inode,
            Target::Pid(_) => false,
        })
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.targets.is_empty() {
            return f.write_str("every listening TCP socket");
        }
        for (i, t) in self.targets.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn good_targets() {
        let any = |port| Target::Port { addr: None, port };
        assert_eq!(parse(":8000"), Ok(any(8000)));
        assert_eq!(parse("8000"), Ok(any(8000)));
        assert_eq!(parse("65535"), Ok(any(65535)));
        assert_eq!(
            parse("127.0.0.1:8000"),
            Ok(Target::Port {
                addr: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: 8000
            })
        );
        assert_eq!(
            parse("0.0.0.0:80"),
            Ok(Target::Port {
                addr: Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                port: 80
            })
        );
        assert_eq!(
            parse("[::1]:8000"),
            Ok(Target::Port {
                addr: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                port: 8000
            })
        );
        assert_eq!(parse("pid:1234"), Ok(Target::Pid(1234)));
        assert_eq!(parse("inode:4322"), Ok(Target::Inode(4322)));
    }

    #[test]
    fn bad_targets_name_the_bad_part() {
        let cases = [
            (":99999", "'99999'"),
            (":0", "'0'"),
            ("0", "'0'"),
            (":", "missing port"),
            ("foo", "expected :PORT"),
            ("foo:80", "'foo'"),
            ("1.2.3:80", "'1.2.3'"),
            ("[::1", "unclosed"),
            ("[::1]", "missing ':PORT'"),
            ("[zz]:80", "'zz'"),
            ("::1:80", "brackets"),
            ("pid:abc", "'abc'"),
            ("pid:", "''"),
            ("pid:0", "'0'"),
            ("pid:99999999999", "'99999999999'"),
            ("inode:-1", "'-1'"),
            ("inode:99999999999", "32-bit"),
            ("", "expected"),
            (":80a", "'80a'"),
        ];
        for (input, needle) in cases {
            let e = parse(input).expect_err(input).to_string();
            assert!(e.contains(needle), "{input}: {e} lacks {needle}");
            assert!(e.starts_with("invalid target"), "{e}");
        }
    }

    #[test]
    fn kernel_ports_only_when_every_target_has_one() {
        let q = Query::new(vec![
            parse(":80").unwrap(),
            parse("127.0.0.1:80").unwrap(),
            parse("81").unwrap(),
        ]);
        assert_eq!(q.kernel_ports(), Some(vec![80, 81]));
        let q = Query::new(vec![parse(":80").unwrap(), parse("pid:1").unwrap()]);
        assert_eq!(q.kernel_ports(), None);
        assert!(q.wants_all_states());
        assert_eq!(Query::default().kernel_ports(), None);
    }

    #[test]
    fn exact_address_matches_only_that_address() {
        let q = Query::new(vec![parse("127.0.0.1:80").unwrap()]);
        assert!(q.matches_local(IpAddr::V4(Ipv4Addr::LOCALHOST), 80, 1));
        assert!(!q.matches_local(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80, 1));
        let q = Query::new(vec![parse(":80").unwrap()]);
        assert!(q.matches_local(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80, 1));
    }
}
