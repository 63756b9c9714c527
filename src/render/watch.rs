//! `watch` output: one JSON line per sample, or a redrawn terminal frame
//! with depth/backlog, min/max and a sparkline of the accept queue; with
//! no target, an overview of every listener ranked by trouble (`rank`).

use std::cmp::Ordering;
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
    footer(&mut f, s, h);
    out.write_all(f.as_bytes())?;
    out.flush()
}

/// Host counters for the interval and since the start, then warnings.
fn footer(f: &mut String, s: &Sample, h: &History) {
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
}

/// Accept-queue depth over backlog (a full queue holds backlog + 1); a
/// socket without an accept queue ranks as empty.
fn fill(s: &SampleSocket) -> f64 {
    s.accept_queue.map_or(0.0, |q| {
        if q.backlog == 0 {
            if q.depth > 0 {
                f64::INFINITY
            } else {
                0.0
            }
        } else {
            f64::from(q.depth) / f64::from(q.backlog)
        }
    })
}

/// The overview's order: most drops in the last interval first, then the
/// fullest accept queue, then by port.
pub fn rank(a: &SampleSocket, b: &SampleSocket) -> Ordering {
    b.drops_delta
        .unwrap_or(0)
        .cmp(&a.drops_delta.unwrap_or(0))
        .then(fill(b).total_cmp(&fill(a)))
        .then((a.local_port, a.local_addr, a.inode).cmp(&(b.local_port, b.local_addr, b.inode)))
}

/// Rows in the overview; the rest are counted in one line.
const OVERVIEW_ROWS: usize = 40;

fn signed(v: i64) -> String {
    if v > 0 {
        format!("+{v}")
    } else {
        v.to_string()
    }
}

/// One frame of the every-listener view: sockets in the sample's order
/// (ranked by the caller), with the interval's change of depth and drops.
pub fn overview(
    out: &mut impl Write,
    s: &Sample,
    h: &History,
    interval_ms: u128,
    clear: bool,
) -> io::Result<()> {
    let mut f = String::new();
    if clear {
        f.push_str("\x1b[H\x1b[2J");
    }
    f.push_str(&format!(
        "sockmap watch: every listener, most dropping and fullest first  every {interval_ms}ms  \
         sample {}  {:.1}s  (Ctrl-C to stop)\n\n",
        s.seq,
        s.elapsed_ms as f64 / 1000.0
    ));
    f.push_str(&format!(
        "{:<24} {:>14} {:>5} {:>6} {:>7} {:>6} {:>5}  {:<20}  {}\n",
        "LISTENER",
        "ACCEPT/BACKLOG",
        "FILL",
        "±DEPTH",
        "DROPS",
        "+DROPS",
        "SYN",
        "HOLDERS",
        "HISTORY"
    ));
    for sock in s.sockets.iter().take(OVERVIEW_ROWS) {
        let depths = h.depth.get(&sock.inode);
        let (acc, pct, top) = sock.accept_queue.map_or(("-".into(), "-".into(), 0), |q| {
            let pct = if q.backlog == 0 {
                "-".to_string()
            } else {
                format!("{}%", u64::from(q.depth) * 100 / u64::from(q.backlog))
            };
            (format!("{}/{}", q.depth, q.backlog), pct, q.backlog + 1)
        });
        let change = depths.filter(|d| d.len() >= 2).map_or("-".into(), |d| {
            let n = d.len();
            signed(i64::from(d[n - 1]) - i64::from(d[n - 2]))
        });
        let holders = format!(
            "{} {}",
            sock.holders,
            sock.commands
                .iter()
                .map(|c| crate::escape::bytes(c.as_bytes()))
                .collect::<Vec<_>>()
                .join(",")
        );
        f.push_str(&format!(
            "{:<24} {:>14} {:>5} {:>6} {:>7} {:>6} {:>5}  {:<20}  {}\n",
            sample_label(sock),
            acc,
            pct,
            change,
            sock.drops.map_or("-".into(), |d| d.to_string()),
            sock.drops_delta.map_or("-".into(), |d| signed(d.into())),
            sock.syn_queue.map_or("-".into(), |q| q.depth.to_string()),
            holders,
            depths.map(|d| spark(d, top)).unwrap_or_default()
        ));
    }
    if s.sockets.len() > OVERVIEW_ROWS {
        f.push_str(&format!(
            "({} more listeners, all calmer than these)\n",
            s.sockets.len() - OVERVIEW_ROWS
        ));
    }
    if s.sockets.is_empty() {
        f.push_str("(no listening socket right now)\n");
    }
    footer(&mut f, s, h);
    out.write_all(f.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::report::AcceptQueue;
    use crate::model::TcpState;
    use std::net::{IpAddr, Ipv4Addr};

    fn sock(inode: u64, port: u16, depth: u32, backlog: u32, drops: u32) -> SampleSocket {
        SampleSocket {
            netns: 0,
            inode: Inode(inode),
            proto: Proto::Tcp,
            state: TcpState::Listen,
            local_addr: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            local_port: Some(port),
            path: None,
            unix_name: None,
            recv_q: None,
            rcvbuf: None,
            accept_queue: Some(AcceptQueue { depth, backlog }),
            syn_queue: None,
            drops: Some(drops),
            drops_delta: None,
            holders: 1,
            commands: vec!["srv".into()],
            waiters: 0,
        }
    }

    fn sample(seq: u64, sockets: Vec<SampleSocket>) -> Sample {
        Sample {
            schema: crate::model::report::SCHEMA,
            kind: "sample",
            seq,
            time: 0.0,
            elapsed_ms: 1000 * (seq - 1),
            sockets,
            counters: ListenCounters::default(),
            udp_counters: UdpCounters::default(),
            warnings: Vec::new(),
        }
    }

    /// Dropping beats full, full beats empty, then by port.
    #[test]
    fn rank_puts_trouble_first() {
        let mut dropping = sock(1, 9000, 1, 100, 7);
        dropping.drops_delta = Some(2);
        let full = sock(2, 8000, 18, 20, 0);
        let half = sock(3, 7000, 10, 20, 0);
        let idle_a = sock(4, 81, 0, 20, 0);
        let idle_b = sock(5, 80, 0, 20, 0);
        let mut v = [idle_a, half, idle_b, full, dropping];
        v.sort_by(rank);
        let order: Vec<u64> = v.iter().map(|s| s.inode.0).collect();
        assert_eq!(order, [1, 2, 3, 5, 4]);
    }

    #[test]
    fn overview_frame_pinned() {
        let mut h = History::default();
        h.push(&sample(
            1,
            vec![sock(2, 8000, 15, 20, 0), sock(4, 81, 0, 20, 0)],
        ));
        let mut filling = sock(2, 8000, 18, 20, 3);
        filling.drops_delta = Some(3);
        filling.commands = vec!["evil\x1b]0;x".into()];
        let mut idle = sock(4, 81, 0, 20, 0);
        idle.drops_delta = Some(0);
        idle.holders = 0;
        idle.commands = Vec::new();
        let s = sample(2, vec![filling, idle]);
        h.push(&s);
        let mut out = Vec::new();
        overview(&mut out, &s, &h, 1000, false).unwrap();
        let got = String::from_utf8(out).unwrap();
        let want = "\
sockmap watch: every listener, most dropping and fullest first  every 1000ms  sample 2  1.0s  (Ctrl-C to stop)

LISTENER                 ACCEPT/BACKLOG  FILL ±DEPTH   DROPS +DROPS   SYN  HOLDERS               HISTORY
127.0.0.1:8000                    18/20   90%     +3       3     +3     -  1 evil\\x1b]0;x        ▆▇
127.0.0.1:81                       0/20    0%      0       0      0     -  0                     ▁▁

host TcpExt (this interval / since start): ListenOverflows n/a/n/a  ListenDrops n/a/n/a  TCPReqQFullDrop n/a/n/a  TCPReqQFullDoCookies n/a/n/a  SyncookiesSent n/a/n/a
";
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn sparkline_scales_to_backlog() {
        let v: VecDeque<u32> = [0, 25, 51].into_iter().collect();
        assert_eq!(spark(&v, 51), "▁▄█");
    }
}
