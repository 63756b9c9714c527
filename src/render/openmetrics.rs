//! A report as Prometheus metrics: the OpenMetrics 1.0 text format
//! (encoded by the `prometheus-client` crate) and the classic Prometheus
//! text format 0.0.4, which `Format::negotiate` picks from an HTTP
//! `Accept` header. Pure: an `Exposition` in, bytes out. Must not collect,
//! serve HTTP or keep state between scrapes (`app::export` does that).
//!
//! One series per listening socket, labelled by what survives a restart
//! (`proto`, `local_address`, `local_port`; `netns` for an `ip netns`
//! name, `container` for a container's name or short id), never by pid. Two sockets with the same labels (a
//! SO_REUSEPORT group) get an `inode` label each so every series stays
//! unique. Holder details go in one `sockmap_socket_info` series per socket.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::model::report::{GroupKind, Report, SocketReport, SynScope};
use crate::model::warning::Warning;
use crate::model::{Inode, ListenCounters, Proto, TcpState, UdpCounters};

/// Everything one scrape shows.
#[derive(Debug, Clone)]
pub struct Exposition<'a> {
    /// `None`: this scrape's collection failed (only the scrape metrics).
    pub report: Option<&'a Report>,
    /// Host listen counters, one entry per network namespace seen.
    pub counters: Vec<HostCounters>,
    pub scrape_duration: Duration,
    /// Failed collections since the exporter started, this one included.
    pub scrape_errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCounters {
    /// The namespace's name or id; `None` for the exporter's own.
    pub netns: Option<String>,
    pub counters: ListenCounters,
    pub udp: UdpCounters,
}

/// The two exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what any Prometheus understands.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Content negotiation on an `Accept` header: OpenMetrics when the
    /// client rates it at least as high as the text format (Prometheus
    /// sends `application/openmetrics-text;version=1.0.0,...;q=0.75,
    /// text/plain;version=0.0.4;q=0.5,*/*;q=0.1`), else the text format —
    /// also when nothing matches, as the reference Go client does.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut om, mut text) = (0.0f64, 0.0f64);
        for range in accept.split(',') {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0;
            let mut version = None;
            for p in params {
                if let Some((k, v)) = p.split_once('=') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            match media.as_str() {
                // 0.0.1 is the pre-1.0 draft Prometheus still lists; 1.0.0 reads the same way.
                "application/openmetrics-text"
                    if version
                        .as_deref()
                        .is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
                {
                    om = om.max(q)
                }
                "text/plain" if version.as_deref().is_none_or(|v| v == "0.0.4") => {
                    text = text.max(q)
                }
                "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// The exposition in `format`.
pub fn encode(x: &Exposition<'_>, format: Format) -> Vec<u8> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(families(x))));
    let mut om = String::new();
    // Writing into a String cannot fail; the encoder's Result only
    // carries fmt::Error from the writer.
    if prometheus_client::encoding::text::encode(&mut om, &registry).is_err() {
        om.clear();
    }
    match format {
        Format::OpenMetrics => om.into_bytes(),
        Format::Text => to_text(&om).into_bytes(),
    }
}

/// OpenMetrics text → Prometheus text 0.0.4 for the metric types used
/// here (gauges and counters). The crate only writes OpenMetrics; the two
/// differ in three ways: a counter family is named `x` in OpenMetrics and
/// `x_total` in 0.0.4 (its samples are `x_total` in both), `# UNIT` lines
/// and the `# EOF` trailer exist only in OpenMetrics.
pub fn to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut help: Option<&str> = None;
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            // Held until its TYPE line says whether the name needs `_total`.
            if let Some(h) = help.replace(line) {
                push_line(&mut out, h);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = if kind == "counter" { "_total" } else { "" };
            if let Some(h) = help.take() {
                let h_rest = h.strip_prefix("# HELP ").unwrap_or(h);
                let text = h_rest
                    .strip_prefix(name)
                    .map_or(h_rest, |t| t.strip_prefix(' ').unwrap_or(t));
                out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        if let Some(h) = help.take() {
            push_line(&mut out, h);
        }
        push_line(&mut out, line);
    }
    if let Some(h) = help {
        push_line(&mut out, h);
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    counter: bool,
    series: Vec<(Labels, Value)>,
}

impl Family {
    fn gauge(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            unit: None,
            counter: false,
            series: Vec::new(),
        }
    }

    /// `name` without `_total`: the encoder appends it to the samples.
    fn counter(name: &'static str, help: &'static str) -> Self {
        Family {
            counter: true,
            ..Family::gauge(name, help)
        }
    }

    fn unit(self, unit: Unit) -> Self {
        Family {
            unit: Some(unit),
            ..self
        }
    }

    fn push(&mut self, labels: Labels, v: u64) {
        self.series.push((labels, Value::Int(v)));
    }
}

/// The metric families of one scrape, handed to the crate's encoder.
#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in self.0.iter().filter(|f| !f.series.is_empty()) {
            let kind = if f.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut family = encoder.encode_descriptor(f.name, f.help, f.unit.as_ref(), kind)?;
            // A label-less series is written without `{}`.
            if let [(labels, v)] = f.series.as_slice() {
                if labels.is_empty() {
                    value(family, *v, f.counter)?;
                    continue;
                }
            }
            for (labels, v) in &f.series {
                value(family.encode_family(labels)?, *v, f.counter)?;
            }
        }
        Ok(())
    }
}

fn value(e: MetricEncoder<'_>, v: Value, counter: bool) -> Result<(), std::fmt::Error> {
    match (v, counter) {
        (Value::Int(v), true) => ConstCounter::new(v).encode(e),
        (Value::Float(v), true) => ConstCounter::new(v).encode(e),
        (Value::Int(v), false) => ConstGauge::new(v).encode(e),
        (Value::Float(v), false) => ConstGauge::new(v).encode(e),
    }
}

/// The sockets exported, one series each: listeners (TCP, unix) and
/// unconnected UDP sockets — a connected socket shares its local port
/// with its listener and would only add churn.
fn exported(s: &SocketReport) -> bool {
    match s.proto {
        Proto::Udp => s.state == TcpState::Close && s.remote_port.is_none_or(|p| p == 0),
        Proto::Tcp | Proto::Unix => s.state == TcpState::Listen,
    }
}

/// What identifies a socket across restarts of its server. A unix path
/// is another process's bytes: label values carry it exactly (the
/// encoder escapes quotes, backslashes and newlines).
fn base_labels(s: &SocketReport) -> Labels {
    let mut l = vec![("proto", s.proto.to_string())];
    if let (Some(a), Some(p)) = (s.local_addr, s.local_port) {
        l.push(("local_address", a.to_string()));
        l.push(("local_port", p.to_string()));
    }
    if let Some(path) = &s.path {
        l.push(("path", path.clone()));
    }
    // A named namespace or a container's: what survives its restart (the
    // nsfs inode does not). Unnamed namespaces (ours, the host's) add no
    // label, so a single-namespace host's series are unchanged.
    if let Some(name) = &s.netns.name {
        l.push(("netns", name.clone()));
    }
    if let Some(c) = &s.netns.container {
        let short = c.id.get(..12).unwrap_or(&c.id);
        l.push((
            "container",
            c.name.clone().unwrap_or_else(|| short.to_string()),
        ));
    }
    l
}

fn families(x: &Exposition<'_>) -> Vec<Family> {
    let mut depth = Family::gauge(
        "sockmap_accept_queue_depth",
        "Connections waiting in the listener's accept queue (sk_ack_backlog; ss Recv-Q).",
    );
    let mut backlog = Family::gauge(
        "sockmap_accept_queue_backlog",
        "The listener's accept queue limit: listen() backlog after the somaxconn clamp (sk_max_ack_backlog; ss Send-Q). The queue overflows when depth exceeds it.",
    );
    let mut syn = Family::gauge(
        "sockmap_syn_queue_depth",
        "Half-open connections (request sockets in SYN_RECV) for the listener; for a SO_REUSEPORT group one series for the whole group, without an inode label. Connections answered with syncookies are not counted.",
    );
    let mut drops = Family::counter(
        "sockmap_socket_drops",
        "Packets or connections the kernel dropped at this socket (sk_drops); for a listener mostly connections refused by a full accept queue.",
    );
    let mut recv_q = Family::gauge(
        "sockmap_receive_queue",
        "UDP: memory held by datagrams waiting to be read (skb truesize; ss Recv-Q).",
    )
    .unit(Unit::Bytes);
    let mut rcvbuf = Family::gauge(
        "sockmap_receive_buffer",
        "UDP: the receive queue's limit (sk_rcvbuf, SO_RCVBUF as the kernel holds it); datagrams are dropped when the queue reaches it.",
    )
    .unit(Unit::Bytes);
    let mut holders = Family::gauge(
        "sockmap_socket_holders",
        "Processes holding an fd of this socket: new processes are scanned every scrape, all of /proc every 5 minutes (a socket opened by a process already running shows its holders then).",
    );
    let mut info = Family::gauge(
        "sockmap_socket_info",
        "Always 1: the socket's inode, its group kind (single, shared by fork, reuseport) and its holders' process names.",
    );
    let mut overflows = Family::counter(
        "sockmap_tcp_listen_overflows",
        "Connections that found an accept queue full, whole namespace (TcpExt ListenOverflows).",
    );
    let mut listen_drops = Family::counter(
        "sockmap_tcp_listen_drops",
        "Connections dropped at any listener for any reason, overflows included, whole namespace (TcpExt ListenDrops).",
    );
    let mut syn_full = Family::counter(
        "sockmap_tcp_syn_queue_full_drops",
        "SYNs dropped because a SYN queue was full and syncookies were off, whole namespace (TcpExt TCPReqQFullDrop).",
    );
    let mut cookies = Family::counter(
        "sockmap_tcp_syncookies_sent",
        "SYN cookies sent because a SYN queue was full, whole namespace (TcpExt SyncookiesSent).",
    );
    let mut udp_errors = Family::counter(
        "sockmap_udp_receive_errors",
        "Datagrams that could not be delivered, any reason, whole namespace (Udp InErrors, Udp6 InErrors).",
    );
    let mut udp_rcvbuf = Family::counter(
        "sockmap_udp_receive_buffer_errors",
        "Datagrams dropped because a socket's receive buffer was full, whole namespace (Udp RcvbufErrors, Udp6 RcvbufErrors).",
    );
    let mut duration = Family::gauge(
        "sockmap_scrape_duration",
        "Time this scrape spent collecting sockets, holders and counters.",
    )
    .unit(Unit::Seconds);
    let mut errors = Family::counter(
        "sockmap_scrape_errors",
        "Scrapes whose collection failed since the exporter started.",
    );
    let mut warnings = Family::gauge(
        "sockmap_warnings",
        "What this scrape could not see, by kind, as the count the warnings give (e.g. processes_unreadable: processes whose fds could not be read, so holders may be missing).",
    );

    if let Some(r) = x.report {
        socket_series(
            r,
            &mut [
                &mut depth,
                &mut backlog,
                &mut syn,
                &mut drops,
                &mut recv_q,
                &mut rcvbuf,
                &mut holders,
                &mut info,
            ],
        );
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        for w in &r.warnings {
            *by_kind.entry(warning_kind(w)).or_default() += w.count;
        }
        for (kind, n) in by_kind {
            warnings.push(vec![("kind", kind)], n);
        }
    }
    for h in &x.counters {
        let labels: Labels = h
            .netns
            .iter()
            .map(|n| ("netns", n.clone()))
            .collect::<Vec<_>>();
        let c = &h.counters;
        for (fam, v) in [
            (&mut overflows, c.listen_overflows),
            (&mut listen_drops, c.listen_drops),
            (&mut syn_full, c.req_q_full_drop),
            (&mut cookies, c.syncookies_sent),
        ] {
            if let Some(v) = v {
                fam.push(labels.clone(), v);
            }
        }
        let u = &h.udp;
        for (v4, v6, fam) in [
            (u.in_errors, u.in6_errors, &mut udp_errors),
            (u.rcvbuf_errors, u.rcvbuf6_errors, &mut udp_rcvbuf),
        ] {
            for (v, family) in [(v4, "inet"), (v6, "inet6")] {
                if let Some(v) = v {
                    let mut l = labels.clone();
                    l.push(("family", family.to_string()));
                    fam.push(l, v);
                }
            }
        }
    }
    duration
        .series
        .push((Vec::new(), Value::Float(x.scrape_duration.as_secs_f64())));
    errors.push(Vec::new(), x.scrape_errors);
    vec![
        depth,
        backlog,
        syn,
        drops,
        recv_q,
        rcvbuf,
        holders,
        info,
        overflows,
        listen_drops,
        syn_full,
        cookies,
        udp_errors,
        udp_rcvbuf,
        warnings,
        duration,
        errors,
    ]
}

/// The warning's kind as the JSON document names it (`processes_unreadable`).
fn warning_kind(w: &Warning) -> String {
    serde_json::to_value(w.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", w.kind))
}

/// Per-socket families, in this order: depth, backlog, syn, drops,
/// receive queue, receive buffer, holders, info.
fn socket_series(r: &Report, f: &mut [&mut Family; 8]) {
    let socks: Vec<&SocketReport> = r.sockets.iter().filter(|s| exported(s)).collect();
    // Labels shared by two sockets (a reuseport group) get an inode label.
    let mut seen: HashMap<Labels, usize> = HashMap::new();
    for s in &socks {
        *seen.entry(base_labels(s)).or_default() += 1;
    }
    let kind: HashMap<Inode, GroupKind> = r
        .groups
        .iter()
        .flat_map(|g| g.inodes.iter().map(move |i| (*i, g.kind)))
        .collect();
    let mut group_syn_done: HashSet<Labels> = HashSet::new();
    for s in socks {
        let base = base_labels(s);
        let shared_labels = seen.get(&base).copied().unwrap_or(0) > 1;
        let mut labels = base.clone();
        if shared_labels {
            labels.push(("inode", s.inode.to_string()));
        }
        if let Some(q) = s.accept_queue {
            f[0].push(labels.clone(), q.depth.into());
            f[1].push(labels.clone(), q.backlog.into());
        }
        match s.syn_queue {
            Some(q) if q.scope == SynScope::Socket => f[2].push(labels.clone(), q.depth.into()),
            Some(q) if group_syn_done.insert(base.clone()) => f[2].push(base, q.depth.into()),
            _ => {}
        }
        if let Some(d) = s.drops {
            f[3].push(labels.clone(), d.into());
        }
        if s.proto == Proto::Udp {
            if let Some(q) = s.recv_q {
                f[4].push(labels.clone(), q.into());
            }
            if let Some(b) = s.rcvbuf {
                f[5].push(labels.clone(), b.into());
            }
        }
        let pids: HashSet<u32> = s.holders.iter().map(|h| h.pid).collect();
        f[6].push(labels.clone(), pids.len() as u64);
        // Label values are UTF-8: an invalid byte becomes U+FFFD here (the
        // JSON report keeps the exact bytes).
        let comms: std::collections::BTreeSet<std::borrow::Cow<'_, str>> =
            s.holders.iter().map(|h| h.comm.to_string_lossy()).collect();
        let kind = match kind.get(&s.inode) {
            Some(GroupKind::Single) => "single",
            Some(GroupKind::Shared) => "shared",
            Some(GroupKind::Reuseport) => "reuseport",
            None => "",
        };
        if !shared_labels {
            labels.push(("inode", s.inode.to_string()));
        }
        labels.push(("kind", kind.to_string()));
        labels.push(("comm", comms.into_iter().collect::<Vec<_>>().join(",")));
        f[7].push(labels, 1);
    }
}

#[cfg(test)]
#[path = "openmetrics_tests.rs"]
mod tests;
