//! The TARGET grammar (a contract) → `Target`, and the `Query` built from
//! several of them. Pure: no I/O; service names are looked up through the
//! `Services` the caller passes (the CLI reads /etc/services).
//!
//! ```text
//! TARGET  = [tcp: | udp:] INET | unix:PATH | unix:@NAME | pid:PID
//!         | inode:INODE | comm:NAME | netns:NAME | netns:INODE
//! INET    = PORTS | :PORTS | ADDR:PORTS | ADDR | *:PORTS | *
//! ADDR    = IPv4 | [IPv6] | IPv6 (without a port)
//! PORTS   = ITEM[,ITEM]...   ITEM = PORT | LO-HI | service name
//! ```

mod ports;
mod query;
mod services;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use ports::PortSet;
pub use query::{PortFilter, Query, MAX_KERNEL_PORTS};
pub use services::{NoServices, ServiceTable, Services};

use crate::model::Proto;

/// The longest `comm` the kernel keeps (TASK_COMM_LEN - 1).
pub const COMM_MAX: usize = 15;
/// `sun_path` of `struct sockaddr_un`: a path may fill it; an abstract
/// name loses one byte to its leading NUL.
pub const UNIX_PATH_MAX: usize = 108;

/// One thing the user asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// TCP or UDP sockets by local address and/or ports.
    Inet(Inet),
    /// A unix socket by the name it is bound to.
    Unix(UnixName),
    /// Every socket this process holds.
    Pid(u32),
    /// One socket, by inode.
    Inode(u64),
    /// Every socket held by processes with this command name (`comm`).
    Comm(String),
    /// A network namespace: alone, every listener in it; with other
    /// targets, narrows them to that namespace.
    Netns(NetnsRef),
}

/// `[tcp:|udp:] ADDR:PORTS`. At least one of `addr`, `ports` narrows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inet {
    /// `tcp:`/`udp:` as written; `None` (no prefix) means TCP.
    pub proto: Option<Proto>,
    pub addr: AddrMatch,
    /// `None`: every port (an address without a port).
    pub ports: Option<PortSet>,
}

/// Which local addresses an inet target takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrMatch {
    /// `:PORT`: any local address.
    Any,
    /// Exactly this address (`0.0.0.0:80` is the IPv4 wildcard only,
    /// `[::]:80` the IPv6 one).
    Exact(IpAddr),
    /// `*:PORT`: the wildcard address of either family.
    Wildcard,
}

/// `unix:PATH` or `unix:@NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixName {
    Path(String),
    /// Abstract name, without the leading NUL (shown as `@NAME`).
    Abstract(String),
}

/// `netns:NAME` (a /run/netns bind mount) or `netns:INODE` (nsfs inode).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetnsRef {
    Name(String),
    Inode(u64),
}

impl Inet {
    /// The protocol this target selects (no prefix: TCP).
    pub fn proto(&self) -> Proto {
        self.proto.unwrap_or(Proto::Tcp)
    }

    /// Does a socket of `proto` bound to `addr:port` match?
    pub fn matches(&self, proto: Proto, addr: IpAddr, port: u16) -> bool {
        proto == self.proto() && self.matches_addr_port(addr, port)
    }

    /// Does a socket bound to `addr:port` match, whatever its protocol?
    pub fn matches_addr_port(&self, addr: IpAddr, port: u16) -> bool {
        let addr_ok = match self.addr {
            AddrMatch::Any => true,
            AddrMatch::Exact(a) => a == addr,
            AddrMatch::Wildcard => addr.is_unspecified(),
        };
        addr_ok && self.ports.as_ref().is_none_or(|p| p.contains(port))
    }
}

impl UnixName {
    /// Does a unix socket whose `sun_path` the kernel reports as `raw`
    /// (abstract: a leading NUL) match? Paths compare byte for byte as
    /// bound; a renamed or symlinked path needs a stat, which is the
    /// collector's business.
    pub fn matches_raw(&self, raw: &[u8]) -> bool {
        match self {
            UnixName::Path(p) => raw == p.as_bytes(),
            UnixName::Abstract(n) => raw.first() == Some(&0) && &raw[1..] == n.as_bytes(),
        }
    }
}

impl Target {
    /// `:PORT` or `ADDR:PORT` over TCP, the oldest form.
    pub fn port(addr: Option<IpAddr>, port: u16) -> Self {
        Target::Inet(Inet {
            proto: None,
            addr: addr.map_or(AddrMatch::Any, AddrMatch::Exact),
            ports: Some(PortSet::single(port)),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Inet(i) => i.fmt(f),
            Target::Unix(UnixName::Path(p)) => write!(f, "unix:{p}"),
            Target::Unix(UnixName::Abstract(n)) => write!(f, "unix:@{n}"),
            Target::Pid(p) => write!(f, "pid:{p}"),
            Target::Inode(i) => write!(f, "inode:{i}"),
            Target::Comm(c) => write!(f, "comm:{c}"),
            Target::Netns(NetnsRef::Name(n)) => write!(f, "netns:{n}"),
            Target::Netns(NetnsRef::Inode(i)) => write!(f, "netns:{i}"),
        }
    }
}

impl fmt::Display for Inet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.proto {
            write!(f, "{p}:")?;
        }
        match self.addr {
            AddrMatch::Any => {}
            AddrMatch::Exact(IpAddr::V4(a)) => write!(f, "{a}")?,
            AddrMatch::Exact(IpAddr::V6(a)) => write!(f, "[{a}]")?,
            AddrMatch::Wildcard => f.write_str("*")?,
        }
        match (&self.ports, self.addr, self.proto) {
            (None, _, _) => {}
            // `udp:53` rather than `udp::53`.
            (Some(ports), AddrMatch::Any, Some(_)) => write!(f, "{ports}")?,
            (Some(ports), _, _) => write!(f, ":{ports}")?,
        }
        Ok(())
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

const FORMS: &str = "expected a port (:8000, :80,443, :8000-8010, :http), an address \
                     (127.0.0.1, 127.0.0.1:80, [::1]:80, *:80), tcp:/udp: before either, \
                     unix:PATH, pid:PID, inode:INODE, comm:NAME or netns:NAME";

/// Parse one TARGET with no service table (`:http` is refused).
pub fn parse(input: &str) -> Result<Target, TargetError> {
    parse_with(input, &NoServices)
}

/// Parse one TARGET, looking service names up in `services`.
pub fn parse_with(input: &str, services: &dyn Services) -> Result<Target, TargetError> {
    let err = |reason: String| TargetError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err(FORMS.into()));
    }
    if let Some(rest) = s.strip_prefix("pid:") {
        let pid = parse_id("pid", rest).map_err(err)?;
        let pid = u32::try_from(pid)
            .ok()
            .filter(|p| *p <= 4_194_304)
            .ok_or_else(|| err(format!("invalid pid '{rest}': larger than any pid")))?;
        return Ok(Target::Pid(pid));
    }
    if let Some(rest) = s.strip_prefix("inode:") {
        let ino = parse_id("inode", rest).map_err(err)?;
        let ino = u32::try_from(ino)
            .map_err(|_| err(format!("invalid inode '{rest}': socket inodes are 32-bit")))?;
        return Ok(Target::Inode(u64::from(ino)));
    }
    if let Some(rest) = s.strip_prefix("unix:") {
        return parse_unix(rest).map(Target::Unix).map_err(err);
    }
    if let Some(rest) = s.strip_prefix("comm:") {
        return parse_comm(rest).map(Target::Comm).map_err(err);
    }
    if let Some(rest) = s.strip_prefix("netns:") {
        return parse_netns(rest).map(Target::Netns).map_err(err);
    }
    for (prefix, proto) in [("tcp:", Proto::Tcp), ("udp:", Proto::Udp)] {
        if let Some(rest) = s.strip_prefix(prefix) {
            if rest.is_empty() {
                return Err(err(format!("missing port or address after '{prefix}'")));
            }
            if let Some(other) = ["pid:", "inode:", "unix:", "comm:", "netns:", "tcp:", "udp:"]
                .iter()
                .find(|k| rest.starts_with(*k))
            {
                return Err(err(format!(
                    "'{prefix}' goes before a port or an address, not '{other}'"
                )));
            }
            return parse_inet(rest, Some(proto), services)
                .map(Target::Inet)
                .map_err(err);
        }
    }
    parse_inet(s, None, services).map(Target::Inet).map_err(err)
}

fn parse_id(what: &str, s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid {what} '{s}': expected a positive whole number"
        ));
    }
    match s.parse::<u64>() {
        Ok(0) => Err(format!("invalid {what} '0': must be at least 1")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("invalid {what} '{s}': too large")),
    }
}

fn parse_unix(rest: &str) -> Result<UnixName, String> {
    if rest.contains('\0') {
        return Err("a unix socket name cannot contain a NUL byte".into());
    }
    if let Some(name) = rest.strip_prefix('@') {
        if name.is_empty() {
            return Err("missing abstract name after 'unix:@'".into());
        }
        if name.len() > UNIX_PATH_MAX - 1 {
            return Err(format!(
                "abstract name '@{name}' is {} bytes: at most {} fit in sun_path",
                name.len(),
                UNIX_PATH_MAX - 1
            ));
        }
        return Ok(UnixName::Abstract(name.to_string()));
    }
    if rest.is_empty() {
        return Err("missing path after 'unix:' (unix:/run/app.sock, or unix:@NAME)".into());
    }
    if rest.len() > UNIX_PATH_MAX {
        return Err(format!(
            "unix path '{rest}' is {} bytes: at most {UNIX_PATH_MAX} fit in sun_path",
            rest.len()
        ));
    }
    Ok(UnixName::Path(rest.to_string()))
}

fn parse_comm(rest: &str) -> Result<String, String> {
    if rest.is_empty() {
        return Err("missing command name after 'comm:'".into());
    }
    if rest.contains('\0') {
        return Err("a command name cannot contain a NUL byte".into());
    }
    if rest.len() > COMM_MAX {
        let mut cut = COMM_MAX;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(format!(
            "command name '{rest}' is {} bytes: the kernel keeps {COMM_MAX}, so write 'comm:{}'",
            rest.len(),
            &rest[..cut]
        ));
    }
    Ok(rest.to_string())
}

fn parse_netns(rest: &str) -> Result<NetnsRef, String> {
    if rest.is_empty() {
        return Err("missing namespace after 'netns:' (a name in /run/netns or an inode)".into());
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        let ino = parse_id("namespace inode", rest)?;
        let ino = u32::try_from(ino).map_err(|_| {
            format!("invalid namespace inode '{rest}': namespace inodes are 32-bit")
        })?;
        return Ok(NetnsRef::Inode(u64::from(ino)));
    }
    if rest == "." || rest == ".." || rest.contains('/') || rest.contains('\0') {
        return Err(format!(
            "invalid namespace name '{rest}': a name in /run/netns has no '/' and is not . or .."
        ));
    }
    if rest.len() > 255 {
        return Err(format!("namespace name '{rest}' is longer than 255 bytes"));
    }
    Ok(NetnsRef::Name(rest.to_string()))
}

/// `[ADDR][:PORTS]` after an optional protocol prefix.
fn parse_inet(s: &str, proto: Option<Proto>, services: &dyn Services) -> Result<Inet, String> {
    let lookup = proto.unwrap_or(Proto::Tcp);
    let ports = |spec: &str| ports::parse_ports(spec, lookup, services);
    let inet = |addr, ports| Inet { proto, addr, ports };

    if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err("unclosed '[': write IPv6 as [ADDR]:PORT".into());
        };
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("invalid IPv6 address '{addr}'"))?;
        let addr = AddrMatch::Exact(IpAddr::V6(ip));
        if after.is_empty() {
            return Ok(inet(addr, None));
        }
        let Some(spec) = after.strip_prefix(':') else {
            return Err(format!("expected ':PORT' after ']', not '{after}'"));
        };
        return Ok(inet(addr, Some(ports(spec)?)));
    }
    if s == "*" {
        return Ok(inet(AddrMatch::Wildcard, None));
    }
    if let Some(spec) = s.strip_prefix("*:") {
        return Ok(inet(AddrMatch::Wildcard, Some(ports(spec)?)));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        if ip.is_ipv6() {
            reject_ambiguous_v6(s)?;
        }
        return Ok(inet(AddrMatch::Exact(ip), None));
    }
    if let Some(spec) = s.strip_prefix(':') {
        if spec.contains(':') {
            return Err("IPv6 addresses need brackets: [ADDR]:PORT".into());
        }
        return Ok(inet(AddrMatch::Any, Some(ports(spec)?)));
    }
    if s.matches(':').count() > 1 {
        return Err("IPv6 addresses need brackets: [ADDR]:PORT".into());
    }
    if let Some((addr, spec)) = s.split_once(':') {
        let ip = parse_v4(addr)?;
        return Ok(inet(AddrMatch::Exact(IpAddr::V4(ip)), Some(ports(spec)?)));
    }
    if s.contains('.') && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("invalid IPv4 address '{s}'"));
    }
    // A bare port list: `8000`, `8000,8001`, `8000-8010`, `http`.
    ports(s)
        .map(|p| inet(AddrMatch::Any, Some(p)))
        .map_err(|e| {
            // `localhost`, `foo`: maybe meant as a host, not a service.
            if proto.is_none() && e.starts_with("unknown service") && !s.contains(',') {
                format!("{e} (an address must be an IP address such as 127.0.0.1)")
            } else {
                e
            }
        })
}

fn parse_v4(addr: &str) -> Result<Ipv4Addr, String> {
    addr.parse().map_err(|_| {
        if addr.bytes().any(|b| b.is_ascii_alphabetic()) {
            format!("invalid address '{addr}': give an IP address such as 127.0.0.1, not a name")
        } else {
            format!("invalid IPv4 address '{addr}'")
        }
    })
}

/// `::1:80` is a valid IPv6 address, but almost always meant `[::1]:80`:
/// refuse an unbracketed address whose last group reads as a port after
/// an address.
fn reject_ambiguous_v6(s: &str) -> Result<(), String> {
    if let Some((head, last)) = s.rsplit_once(':') {
        let decimal =
            !last.is_empty() && last.len() <= 5 && last.bytes().all(|b| b.is_ascii_digit());
        if decimal && head.parse::<Ipv6Addr>().is_ok() {
            return Err(format!(
                "ambiguous '{s}': write [{head}]:{last} for port {last}, or [{s}] for the address"
            ));
        }
    }
    Ok(())
}
