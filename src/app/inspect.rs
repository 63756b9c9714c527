//! `sockmap inspect`: one pass (or a recorded one, `--from`), one report,
//! rendered — the overview of every listening socket with no target,
//! detailed blocks with one. When nothing matches, one more look says
//! what is there instead (live only).

use std::io::Write;

use super::{Format, InspectConfig};
use crate::error::{exit, Result};
use crate::model::netns::NetnsScope;
use crate::model::report::{Report, SocketReport};
use crate::model::Proto;
use crate::target::{AddrMatch, Inet, PortSet, Query, Target};
use crate::{analyze, collect, render};

pub fn run(cfg: &InspectConfig, out: &mut impl Write, err: &mut impl Write) -> Result<i32> {
    // A recording stands in for the kernel: nothing is collected, not
    // even the second looks that explain an empty result.
    let (query, snap) = match &cfg.from {
        Some(path) => super::snapshot::load(path)?,
        None => (
            cfg.query.clone(),
            collect::collect_with(&cfg.query, cfg.netns.clone(), cfg.scan)?,
        ),
    };
    super::tell_scan(err, cfg.scan, snap.scan.as_ref());
    let live = cfg.from.is_none();
    if let Some(path) = &cfg.save {
        // Written before rendering: a file that cannot be written stops
        // the run before anything is shown.
        super::snapshot::save(path, &query, &snap, out)?;
    }
    let report = analyze::report(&query, &snap);
    match cfg.format {
        Format::Json => render::json::write(out, &report),
        Format::Plain => render::plain::write(out, &report),
        Format::Table if query.is_empty() => render::overview::write(out, &report),
        Format::Table => render::table::write(out, &report, cfg.color),
    }
    .map_err(super::stdout_err)?;
    out.flush().map_err(super::stdout_err)?;
    if cfg.format != Format::Json {
        render::warnings(err, &report.warnings);
    }
    if report.sockets.is_empty() {
        // Escaped as a whole: the query's targets are raw (a recording's
        // come from a file someone else wrote).
        let mut msg = nothing_matches(&query, live);
        if let Some(hint) = live.then(|| elsewhere(cfg)).flatten() {
            msg.push_str("; ");
            msg.push_str(&hint);
        }
        let _ = writeln!(err, "sockmap: {}", crate::escape::terminal(&msg));
        return Ok(exit::NOT_FOUND);
    }
    if let Some(note) = only_elsewhere(&query, &report) {
        let _ = writeln!(err, "sockmap: note: {}", crate::escape::terminal(&note));
    }
    Ok(exit::OK)
}

/// Every match is in another network namespace: say so, as the table's
/// labels are easy to miss ("nothing matches :8000 in this network
/// namespace (4026531833): the 2 sockets shown are in others").
fn only_elsewhere(query: &Query, report: &Report) -> Option<String> {
    let own = report.namespaces.first()?.inode;
    if query.is_empty() || report.sockets.iter().any(|s| s.netns.inode == own) {
        return None;
    }
    let n = report.sockets.len();
    Some(format!(
        "nothing matches {} in this network namespace ({own}): the {} shown {} in other namespaces",
        query,
        if n == 1 {
            "socket".to_string()
        } else {
            format!("{n} sockets")
        },
        if n == 1 { "is" } else { "are" }
    ))
}

/// Nothing matched in the namespaces looked into: when that was fewer
/// than all (`--netns`), look in all of them and say where it is.
/// Best effort: without the privilege to look, nothing is added (the
/// warnings already say what was not inspected).
fn elsewhere(cfg: &InspectConfig) -> Option<String> {
    if cfg.netns == NetnsScope::All && cfg.query.netns().next().is_none() {
        return None;
    }
    let wide = Query {
        targets: cfg
            .query
            .targets
            .iter()
            .filter(|t| !matches!(t, Target::Netns(_)))
            .cloned()
            .collect(),
        ..cfg.query.clone()
    };
    let snap = collect::collect_in(&wide, NetnsScope::All).ok()?;
    let report = analyze::report(&wide, &snap);
    let mut where_: Vec<String> = Vec::new();
    for s in &report.sockets {
        let label = render::netns::label(&s.netns);
        if !where_.contains(&label) {
            where_.push(label);
        }
    }
    if where_.is_empty() {
        return None;
    }
    let n = report.sockets.len();
    Some(format!(
        "{n} socket{} match{} in other network namespaces: {} (drop --netns, or use --netns all)",
        if n == 1 { "" } else { "s" },
        if n == 1 { "es" } else { "" },
        where_.join(", ")
    ))
}

/// "TCP", "UDP", "TCP or unix": the kinds the query looked for.
fn kinds(query: &Query) -> String {
    let names: Vec<&str> = Proto::ALL
        .iter()
        .filter(|p| query.wants(**p))
        .map(|p| match p {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Unix => "unix",
        })
        .collect();
    names.join(" or ")
}

/// "no listening TCP socket matches :18130; a UDP socket is bound there
/// (try udp:18130)": what was looked for, and what exists on the same
/// ports in other protocols or states (`live`: a look at the kernel is
/// allowed; not when replaying a recording).
fn nothing_matches(query: &Query, live: bool) -> String {
    let all = query.wants_all_states();
    let mut msg = if all {
        format!("no {} socket matches {query}", kinds(query))
    } else {
        format!("no listening {} socket matches {query}", kinds(query))
    };
    let hints = if live { look_around(query) } else { Vec::new() };
    if hints.is_empty() {
        if !all {
            msg.push_str(" (add --all for other states)");
        }
    } else {
        msg.push_str("; ");
        msg.push_str(&hints.join("; "));
    }
    msg
}

/// The port targets of `query`, each as a bare port.
fn ports(query: &Query) -> Vec<u16> {
    let mut ports: Vec<u16> = query
        .targets
        .iter()
        .filter_map(|t| match t {
            // A few ports to look around; a wide range is not worth it.
            Target::Inet(i) => i.ports.as_ref().filter(|p| p.len() <= 16),
            _ => None,
        })
        .flat_map(|p| p.ports())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Look again on the query's ports, every protocol and state, and say
/// what is there. Best effort: a failed look adds nothing.
fn look_around(query: &Query) -> Vec<String> {
    let ports = ports(query);
    if ports.is_empty() {
        return Vec::new();
    }
    let wide = Query::new(
        [Proto::Tcp, Proto::Udp]
            .into_iter()
            .flat_map(|proto| {
                ports.iter().map(move |&port| {
                    Target::Inet(Inet {
                        proto: Some(proto),
                        addr: AddrMatch::Any,
                        ports: Some(PortSet::single(port)),
                    })
                })
            })
            .collect(),
    )
    .with_all_states(true);
    let Ok(snap) = collect::collect(&wide) else {
        return Vec::new();
    };
    let report: Report = analyze::report(&wide, &snap);
    let mut hints = Vec::new();
    for port in ports {
        let here: Vec<&SocketReport> = report
            .sockets
            .iter()
            .filter(|s| s.local_port == Some(port))
            .collect();
        let count = |f: &dyn Fn(&SocketReport) -> bool| here.iter().filter(|s| f(s)).count();
        let udp_bound = count(&|s| s.proto == Proto::Udp && s.is_listener());
        let udp_other = count(&|s| s.proto == Proto::Udp && !s.is_listener());
        let tcp_listen = count(&|s| s.proto == Proto::Tcp && s.is_listener());
        let tcp_other = count(&|s| s.proto == Proto::Tcp && !s.is_listener());
        if !query.wants(Proto::Udp) && udp_bound + udp_other > 0 {
            let what = if udp_bound > 0 {
                "a UDP socket is bound there"
            } else {
                "a connected UDP socket uses that port"
            };
            hints.push(format!("{what} (try udp:{port})"));
        }
        if !query.wants(Proto::Tcp) && tcp_listen > 0 {
            hints.push(format!("a TCP socket listens there (try tcp:{port})"));
        }
        if !query.wants_all_states() {
            let other = if query.wants(Proto::Tcp) {
                tcp_other
            } else {
                0
            } + if query.wants(Proto::Udp) {
                udp_other
            } else {
                0
            };
            if other > 0 {
                hints.push(format!(
                    "{other} socket{} on port {port} in other states (add --all)",
                    if other == 1 { "" } else { "s" }
                ));
            }
        }
    }
    hints
}
