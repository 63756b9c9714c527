//! Forwarders: a host port held by `docker-proxy` is not the server, it
//! connects each client on to a container. Its command line names the
//! destination (`-container-ip 172.17.0.2 -container-port 80`); the
//! namespace that owns that address is found from each namespace's local
//! addresses (`/proc/PID/net/fib_trie`, `/proc/PID/net/if_inet6` of a
//! process inside). Pure parsers plus one-line readers; reads only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The destination in a forwarder's NUL-separated command line, if the
/// program is one we know (`docker-proxy`) and it forwards TCP.
pub fn parse_cmdline(cmdline: &[u8]) -> Option<(String, IpAddr, u16)> {
    let args: Vec<&[u8]> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    let prog = args.first()?;
    let base = prog.rsplit(|&b| b == b'/').next()?;
    if base != b"docker-proxy" {
        return None;
    }
    // Go's flag package: `-flag value`, `--flag value`, `-flag=value`.
    let value = |flag: &str| -> Option<&str> {
        let mut it = args.iter().skip(1);
        while let Some(a) = it.next() {
            let a = std::str::from_utf8(a).ok()?;
            let bare = a.trim_start_matches('-');
            match bare.split_once('=') {
                Some((k, v)) if k == flag => return Some(v),
                None if bare == flag => return it.next().and_then(|v| std::str::from_utf8(v).ok()),
                _ => {}
            }
        }
        None
    };
    if value("proto").is_some_and(|p| p != "tcp") {
        return None;
    }
    let addr: IpAddr = value("container-ip")?.parse().ok()?;
    let port: u16 = value("container-port")?.parse().ok()?;
    Some(("docker-proxy".to_string(), addr, port))
}

/// The local IPv4 addresses in a `/proc/net/fib_trie`: each `|-- ADDR`
/// leaf followed by a `/32 host LOCAL` line.
pub fn parse_fib_trie(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(a) = t.strip_prefix("|-- ") {
            last = a.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(a) = last {
                if !out.contains(&IpAddr::V4(a)) {
                    out.push(IpAddr::V4(a));
                }
            }
        }
    }
    out
}

/// The addresses in a `/proc/net/if_inet6` (32 hex digits first per line).
pub fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let hex = l.split_ascii_whitespace().next()?;
            if hex.len() != 32 {
                return None;
            }
            let v = u128::from_str_radix(hex, 16).ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(v)))
        })
        .collect()
}

/// Local addresses of the namespace process `pid` is in.
pub fn local_addrs(proc_root: &Path, pid: u32) -> Vec<IpAddr> {
    let dir = proc_root.join(format!("{pid}/net"));
    let mut v = std::fs::read_to_string(dir.join("fib_trie"))
        .map(|t| parse_fib_trie(&t))
        .unwrap_or_default();
    if let Ok(t) = std::fs::read_to_string(dir.join("if_inet6")) {
        v.extend(parse_if_inet6(&t));
    }
    v
}

/// A forwarder's command line.
pub fn read_cmdline(proc_root: &Path, pid: u32) -> Option<(String, IpAddr, u16)> {
    let bytes = std::fs::read(proc_root.join(format!("{pid}/cmdline"))).ok()?;
    parse_cmdline(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command line as /proc/PID/cmdline holds it: NUL after each arg.
    fn argv(args: &[&str]) -> Vec<u8> {
        args.iter().flat_map(|a| a.bytes().chain([0])).collect()
    }

    /// docker 20.10's docker-proxy, as `ps` shows it for `-p 127.0.0.1:49153:8000`.
    #[test]
    fn docker_proxy_cmdline() {
        let c = argv(&[
            "/usr/sbin/docker-proxy",
            "-proto",
            "tcp",
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            "49153",
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "8000",
        ]);
        assert_eq!(
            parse_cmdline(&c),
            Some((
                "docker-proxy".into(),
                IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2)),
                8000
            ))
        );
        let udp = argv(&[
            "/usr/bin/docker-proxy",
            "-proto",
            "udp",
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "53",
        ]);
        assert_eq!(parse_cmdline(&udp), None);
        let other = argv(&[
            "/usr/bin/socat",
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "80",
        ]);
        assert_eq!(parse_cmdline(&other), None);
        let bad = argv(&[
            "docker-proxy",
            "-container-ip",
            "nope",
            "-container-port",
            "80",
        ]);
        assert_eq!(parse_cmdline(&bad), None);
        let eq = argv(&[
            "docker-proxy",
            "--container-ip=fd00::2",
            "--container-port=80",
        ]);
        assert_eq!(
            parse_cmdline(&eq).map(|(_, a, p)| (a, p)),
            Some(("fd00::2".parse().unwrap(), 80))
        );
        assert_eq!(parse_cmdline(b""), None);
    }

    /// Trimmed from a container's /proc/PID/net/fib_trie (kernel 6.18).
    #[test]
    fn fib_trie_locals() {
        let t = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 172.17.0.0/16 2 0 2
        |-- 172.17.0.0
           /16 link UNICAST
        |-- 172.17.0.2
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 172.17.0.2
              /32 host LOCAL
";
        let v = parse_fib_trie(t);
        assert_eq!(
            v,
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2))
            ]
        );
        assert!(parse_fib_trie("junk\n|-- x\n/32 host LOCAL").is_empty());
    }

    #[test]
    fn if_inet6_addresses() {
        let t = "00000000000000000000000000000001 01 80 10 80       lo\nfe800000000000000042acfffe110002 02 40 20 80     eth0\nshort 1\n";
        assert_eq!(
            parse_if_inet6(t),
            vec![
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                "fe80::42:acff:fe11:2".parse().unwrap()
            ]
        );
    }
}
