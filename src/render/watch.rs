//! `watch` output: one JSON line per sample, or a redrawn terminal frame
//! with depth/backlog, min/max and a sparkline of the accept queue.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};

use super::addr_port;
use crate::model::report::SynScope;
use crate::model::watch::{Sample, SampleSocket};
use crate::model::{Inode, ListenCounters, Proto, UdpCounters};

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const HISTORY: usize = 40;

/// What the live view remembers between frames.
#[derive(Default)]
pub struct History {
    depth: HashMap<Inode, VecDeque<u32>>,
    min_max: HashMap<Inode, (u32, u32)>,
    totals: ListenCounters,
    udp_totals: UdpCounters,
}

impl History {
    pub fn push(&mut self, s: &Sample) {
        for sock in &s.sockets {
            if let Some(q) = sock.accept_queue {
                let h = self.depth.entry(sock.inode).or_default();
                h.push_back(q.depth);
                if h.len() > HISTORY {
                    h.pop_front();
                }
                let mm = self.min_max.entry(sock.inode).or_insert((q.depth, q.depth));
                mm.0 = mm.0.min(q.depth);
                mm.1 = mm.1.max(q.depth);
            }
        }
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        let c = &s.counters;
        let t = &mut self.totals;
        t.listen_overflows = add(t.listen_overflows, c.listen_overflows);
        t.listen_drops = add(t.listen_drops, c.listen_drops);
        t.req_q_full_drop = add(t.req_q_full_drop, c.req_q_full_drop);
        t.req_q_full_do_cookies = add(t.req_q_full_do_cookies, c.req_q_full_do_cookies);
        t.syncookies_sent = add(t.syncookies_sent, c.syncookies_sent);
        let (c, t) = (&s.udp_counters, &mut self.udp_totals);
        t.in_errors = add(t.in_errors, c.in_errors);
        t.rcvbuf_errors = add(t.rcvbuf_errors, c.rcvbuf_errors);
        t.in6_errors = add(t.in6_errors, c.in6_errors);
        t.rcvbuf6_errors = add(t.rcvbuf6_errors, c.rcvbuf6_errors);
    }
}

/// `127.0.0.1:8000`, `udp 127.0.0.1:53`, or the unix path (escaped).
fn sample_label(s: &SampleSocket) -> String {
    match (s.local_addr, s.local_port, &s.unix_name) {
        (Some(a), Some(p), _) if s.proto == Proto::Udp => format!("udp {}", addr_port(a, p)),
        (Some(a), Some(p), _) => addr_port(a, p),
        (_, _, Some(n)) => n.to_string(),
        _ => "(unnamed)".to_string(),
    }
}

fn spark(values: &VecDeque<u32>, top: u32) -> String {
    let top = top.max(1);
    values
        .iter()
        .map(|&v| SPARK[((v.min(top) as usize) * (SPARK.len() - 1)) / top as usize])
        .collect()
}

fn counter(v: Option<u64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| v.to_string())
}

/// One frame of the live view. `clear`: redraw in place (a terminal).
pub fn frame(
    out: &mut impl Write,
    s: &Sample,
    h: &History,
    target: &str,
    interval_ms: u128,
    clear: bool,
) -> io::Result<()> {
    let mut f = String::new();
    if clear {
        f.push_str("\x1b[H\x1b[2J");
    }
    f.push_str(&format!(
        "sockmap watch {target}  every {interval_ms}ms  sample {}  {:.1}s  (Ctrl-C to stop)\n\n",
        s.seq,
        s.elapsed_ms as f64 / 1000.0
    ));
    f.push_str(&format!(
        "{:<24} {:>9} {:>13} {:>9} {:>9} {:>6} {:>7}  {}\n",
        "SOCKET",
        "INODE",
        "QUEUE/LIMIT",
        "MIN/MAX",
        "SYN",
        "DROPS",
        "HOLDERS",
        "ACCEPT QUEUE HISTORY"
    ));
    for sock in &s.sockets {
        let (acc, top) = match (sock.accept_queue, sock.proto) {
            (Some(q), _) => (format!("{}/{}", q.depth, q.backlog), q.backlog + 1),
            // UDP: receive-queue bytes against the buffer limit.
            (None, Proto::Udp) => (
                format!(
                    "{}/{}",
                    sock.recv_q.map_or("?".into(), |v| v.to_string()),
                    sock.rcvbuf.map_or("?".into(), |v| v.to_string())
                ),
                0,
            ),
            (None, _) => ("-".to_string(), 0),
        };
        let mm = h
            .min_max
            .get(&sock.inode)
            .map_or("-".into(), |(a, b)| format!("{a}/{b}"));
        let syn = sock.syn_queue.map_or("-".into(), |q| {
            format!(
                "{}{}",
                q.depth,
                if q.scope == SynScope::Group {
                    "(grp)"
                } else {
                    ""
                }
            )
        });
        let sp = h
            .depth
            .get(&sock.inode)
            .map(|d| spark(d, top))
            .unwrap_or_default();
        f.push_str(&format!(
            "{:<24} {:>9} {:>13} {:>9} {:>9} {:>6} {:>7}  {}\n",
            sample_label(sock),
            sock.inode.to_string(),
            acc,
            mm,
            syn,
            sock.drops.map_or("-".into(), |d| d.to_string()),
            sock.holders,
            sp
        ));
    }
    if s.sockets.is_empty() {
        f.push_str("(nothing listening on the target right now)\n");
    }
    let c = &s.counters;
    let t = &h.totals;
    f.push_str(&format!(
        "\nhost TcpExt (this interval / since start): ListenOverflows {}/{}  ListenDrops {}/{}  \
         TCPReqQFullDrop {}/{}  TCPReqQFullDoCookies {}/{}  SyncookiesSent {}/{}\n",
        counter(c.listen_overflows),
        counter(t.listen_overflows),
        counter(c.listen_drops),
        counter(t.listen_drops),
        counter(c.req_q_full_drop),
        counter(t.req_q_full_drop),
        counter(c.req_q_full_do_cookies),
        counter(t.req_q_full_do_cookies),
        counter(c.syncookies_sent),
        counter(t.syncookies_sent),
    ));
    // UDP drops per socket above; the host's view of them here.
    if s.sockets.iter().any(|s| s.proto == Proto::Udp) {
        let (c, t) = (&s.udp_counters, &h.udp_totals);
        f.push_str(&format!(
            "host Udp (this interval / since start): InErrors {}/{}  RcvbufErrors {}/{}  \
             Udp6InErrors {}/{}  Udp6RcvbufErrors {}/{}\n",
            counter(c.in_errors),
            counter(t.in_errors),
            counter(c.rcvbuf_errors),
            counter(t.rcvbuf_errors),
            counter(c.in6_errors),
            counter(t.in6_errors),
            counter(c.rcvbuf6_errors),
            counter(t.rcvbuf6_errors),
        ));
    }
    for w in &s.warnings {
        f.push_str(&format!(
            "warning: {}\n",
            crate::escape::terminal(&w.message())
        ));
    }
    out.write_all(f.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_backlog() {
        let v: VecDeque<u32> = [0, 25, 51].into_iter().collect();
        assert_eq!(spark(&v, 51), "▁▄█");
    }
}
