//! Host-wide settings (sysctls), listen-queue counters from
//! /proc/net/netstat and UDP receive counters from /proc/net/snmp and
//! /proc/net/snmp6. Pure parsers plus one-line readers around them.

use std::collections::HashMap;
use std::path::Path;

use crate::model::{HostInfo, ListenCounters, UdpCounters};

fn read_u32(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `net.core.somaxconn` of the namespace of the calling thread (a
/// namespace's sysctls are per namespace: read from inside it).
pub fn read_somaxconn(proc_root: &Path) -> Option<u32> {
    read_u32(&proc_root.join("sys/net/core/somaxconn"))
}

pub fn read_host(proc_root: &Path) -> HostInfo {
    HostInfo {
        somaxconn: read_u32(&proc_root.join("sys/net/core/somaxconn")),
        tcp_max_syn_backlog: read_u32(&proc_root.join("sys/net/ipv4/tcp_max_syn_backlog")),
        syncookies: read_u32(&proc_root.join("sys/net/ipv4/tcp_syncookies")),
    }
}

/// Parse /proc/net/netstat (or /proc/net/snmp): pairs of lines, a header
/// `Prefix: Name1 Name2 ...` then `Prefix: v1 v2 ...`. Keys are
/// `Prefix.Name` (e.g. `TcpExt.ListenOverflows`). Malformed pairs are skipped.
pub fn parse_netstat(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((p1, names)), Some((p2, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if p1 != p2 {
            continue;
        }
        for (n, v) in names
            .split_ascii_whitespace()
            .zip(values.split_ascii_whitespace())
        {
            if let Ok(v) = v.parse::<u64>() {
                out.insert(format!("{p1}.{n}"), v);
            }
        }
    }
    out
}

pub fn counters_from(map: &HashMap<String, u64>) -> ListenCounters {
    let get = |k: &str| map.get(&format!("TcpExt.{k}")).copied();
    ListenCounters {
        listen_overflows: get("ListenOverflows"),
        listen_drops: get("ListenDrops"),
        req_q_full_drop: get("TCPReqQFullDrop"),
        req_q_full_do_cookies: get("TCPReqQFullDoCookies"),
        syncookies_sent: get("SyncookiesSent"),
    }
}

/// Parse /proc/net/snmp6: one `Name value` pair per line (`Udp6InErrors
/// 0`). Lines that are not a name and a number are skipped.
pub fn parse_snmp6(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_ascii_whitespace();
            let (name, value) = (it.next()?, it.next()?.parse().ok()?);
            it.next().is_none().then(|| (name.to_string(), value))
        })
        .collect()
}

/// The UDP counters from the parsed /proc/net/snmp (`snmp`) and
/// /proc/net/snmp6 (`snmp6`, empty without IPv6).
pub fn udp_counters_from(snmp: &HashMap<String, u64>, snmp6: &HashMap<String, u64>) -> UdpCounters {
    UdpCounters {
        in_errors: snmp.get("Udp.InErrors").copied(),
        rcvbuf_errors: snmp.get("Udp.RcvbufErrors").copied(),
        in6_errors: snmp6.get("Udp6InErrors").copied(),
        rcvbuf6_errors: snmp6.get("Udp6RcvbufErrors").copied(),
    }
}

/// The host's UDP counters (IPv6 ones `None` on a host without IPv6).
pub fn read_udp_counters(proc_root: &Path) -> std::io::Result<UdpCounters> {
    let snmp = std::fs::read_to_string(proc_root.join("net/snmp"))?;
    let snmp6 = std::fs::read_to_string(proc_root.join("net/snmp6")).unwrap_or_default();
    Ok(udp_counters_from(
        &parse_netstat(&snmp),
        &parse_snmp6(&snmp6),
    ))
}

pub fn read_counters(proc_root: &Path) -> std::io::Result<ListenCounters> {
    let text = std::fs::read_to_string(proc_root.join("net/netstat"))?;
    Ok(counters_from(&parse_netstat(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from this project's dev machine (kernel 6.18), trimmed.
    const NETSTAT: &str = "\
TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled ListenOverflows ListenDrops TCPReqQFullDoCookies TCPReqQFullDrop
TcpExt: 3 0 1 0 0 117 121 2 5
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
MPTcpExt: MPCapableSYNRX
MPTcpExt: 0
";

    #[test]
    fn netstat_counters() {
        let m = parse_netstat(NETSTAT);
        assert_eq!(m["TcpExt.ListenOverflows"], 117);
        assert_eq!(m["IpExt.InNoRoutes"], 0);
        let c = counters_from(&m);
        assert_eq!(c.listen_overflows, Some(117));
        assert_eq!(c.listen_drops, Some(121));
        assert_eq!(c.req_q_full_drop, Some(5));
        assert_eq!(c.req_q_full_do_cookies, Some(2));
        assert_eq!(c.syncookies_sent, Some(3));
    }

    #[test]
    fn netstat_tolerates_junk() {
        assert!(parse_netstat("").is_empty());
        let m = parse_netstat("TcpExt: A B\nIpExt: 1 2\nTcpExt: C\nTcpExt: x\n");
        assert!(m.is_empty());
    }

    /// Captured from this project's dev machine (kernel 6.18), trimmed.
    const SNMP: &str = "\
Tcp: RtoAlgorithm RtoMin
Tcp: 1 200
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 84 0 979 1086 977 0 2 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 5 0 5 0 0 0 0
";
    const SNMP6: &str = "\
Ip6InReceives                   \t12
Udp6InDatagrams                 \t0
Udp6InErrors                    \t31
Udp6RcvbufErrors                \t30
Icmp6OutType133                 \t1
junk line with words
";

    #[test]
    fn udp_counters() {
        let c = udp_counters_from(&parse_netstat(SNMP), &parse_snmp6(SNMP6));
        // UdpLite's InErrors (5) is another protocol: not mixed in.
        assert_eq!(c.in_errors, Some(979));
        assert_eq!(c.rcvbuf_errors, Some(977));
        assert_eq!(c.in6_errors, Some(31));
        assert_eq!(c.rcvbuf6_errors, Some(30));
        // No IPv6: the v6 counters are unknown, not zero.
        let c = udp_counters_from(&parse_netstat(SNMP), &HashMap::new());
        assert_eq!((c.in6_errors, c.rcvbuf6_errors), (None, None));
        let later = UdpCounters {
            in_errors: Some(1000),
            rcvbuf_errors: Some(970),
            ..c
        };
        let d = later.delta(&c);
        assert_eq!((d.in_errors, d.rcvbuf_errors), (Some(21), Some(0)));
    }

    #[test]
    fn live_files_parse() {
        assert!(read_udp_counters(Path::new("/proc"))
            .unwrap()
            .in_errors
            .is_some());
        let c = read_counters(Path::new("/proc")).unwrap();
        assert!(c.listen_overflows.is_some());
        assert!(read_host(Path::new("/proc")).somaxconn.is_some());
    }
}
