//! Host-wide settings (sysctls) and listen-queue counters from
//! /proc/net/netstat. Pure parsers plus one-line readers around them.

use std::collections::HashMap;
use std::path::Path;

use crate::model::{HostInfo, ListenCounters};

fn read_u32(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
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

    #[test]
    fn live_files_parse() {
        let c = read_counters(Path::new("/proc")).unwrap();
        assert!(c.listen_overflows.is_some());
        assert!(read_host(Path::new("/proc")).somaxconn.is_some());
    }
}
