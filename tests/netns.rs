//! Live: sockets in other network namespaces, seen from the host. Each
//! test makes its own `ip netns` namespace (deleted on drop) and its own
//! servers (process groups killed on drop); traffic stays on the
//! namespaces' loopback. Needs root and iproute2 (`ip`, `ss`); with `CI`
//! set a missing piece fails the test.

mod support;

use std::net::TcpStream;
use std::process::Command;

use serde_json::Value;
use support::{inspect_json, output, require, sockmap, NetNs, Served, BIN};

/// The sockets in `v` on `port` in namespace `ns`.
fn in_ns(v: &Value, ns: u64, port: u16) -> Vec<&Value> {
    v["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .filter(|s| s["netns"]["inode"] == ns && s["local_port"] == port)
        .collect()
}

fn pids(s: &Value) -> Vec<u32> {
    let mut v: Vec<u32> = s["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .map(|h| h["pid"].as_u64().expect("pid") as u32)
        .collect();
    v.sort_unstable();
    v
}

/// `ss -tlnpe` inside the namespace: (Recv-Q, inode) of the listener on `port`.
fn ss_in(ns: &NetNs, port: u16) -> (u64, u64) {
    let text = ns.exec(&["ss", "-tlnpe", &format!("sport = :{port}")]);
    let line = text
        .lines()
        .find(|l| l.starts_with("LISTEN"))
        .unwrap_or_else(|| panic!("ss in {} shows no listener on {port}: {text}", ns.name));
    let f: Vec<&str> = line.split_whitespace().collect();
    let recv_q = f[1].parse().expect("Recv-Q");
    let ino = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ino:"))
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("no ino: in {line}"));
    (recv_q, ino)
}

/// A forked server inside a namespace, found from the host: both holders,
/// the namespace's label, the accept queue as `ss` inside it counts it —
/// next to a host server on the same port, with a verdict each.
#[test]
fn forked_server_in_a_netns_is_found_from_the_host() {
    if !require(
        "forked_server_in_a_netns_is_found_from_the_host",
        &["ip", "ss"],
    ) {
        return;
    }
    let ns = NetNs::new();
    let host = Served::start(&[], &["--port", "0", "--workers", "1"]);
    let port = host.port.to_string();
    let prefix = ["ip", "netns", "exec", ns.name.as_str()];
    let inside = Served::start(
        &prefix,
        &[
            "--port",
            &port,
            "--workers",
            "2",
            "--stall",
            "--backlog",
            "8",
        ],
    );
    assert_eq!(inside.port, host.port);
    assert_eq!(inside.pids.len(), 2);

    // Three clients connect inside the namespace; nobody accepts them.
    let p = host.port;
    let clients: Vec<TcpStream> = ns.enter(move || {
        (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", p)).expect("connect inside the netns"))
            .collect()
    });
    let (ss_depth, ss_ino) = ss_in(&ns, p);
    assert_eq!(
        ss_depth, 3,
        "ss inside the namespace counts the waiting clients"
    );

    let (code, v, err) = inspect_json(&[&format!(":{p}")]);
    assert_eq!(code, 0, "{err}");
    let mine = in_ns(&v, ns.inode(), p);
    assert_eq!(mine.len(), 1, "one listener in the namespace: {v:#}");
    let s = mine[0];
    assert_eq!(s["inode"], ss_ino, "the inode ss shows inside");
    assert_eq!(s["accept_queue"]["depth"], ss_depth);
    assert_eq!(s["accept_queue"]["backlog"], 8);
    assert_eq!(s["netns"]["name"], ns.name.as_str());
    let mut want = inside.pids.clone();
    want.sort_unstable();
    assert_eq!(pids(s), want, "both forked holders");

    // The host's own listener on the same port is a separate group.
    let own: Vec<&Value> = v["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .filter(|s| s["local_port"] == p && s["netns"]["inode"] != ns.inode())
        .collect();
    assert_eq!(own.len(), 1, "{v:#}");
    assert_eq!(pids(own[0]), host.pids);
    let groups: Vec<&Value> = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["local_port"] == p)
        .collect();
    assert_eq!(groups.len(), 2, "two namespaces, two verdicts: {groups:#?}");
    assert!(
        groups.iter().all(|g| g["kind"] != "reuseport"),
        "{groups:#?}"
    );
    assert!(groups
        .iter()
        .any(|g| g["netns"] == ns.inode() && g["kind"] == "shared"));

    // The table names each namespace once, the named one by its name.
    let out = output(sockmap(&["inspect", &format!(":{p}")]));
    let text = String::from_utf8_lossy(&out.stdout);
    let label = format!("netns {} (ip netns {})", ns.inode(), ns.name);
    assert_eq!(text.matches(&label).count(), 1, "{text}");
    assert_eq!(text.matches("→ ").count(), 2, "{text}");

    // Narrowed to the namespace: only its listener.
    let (code, v, _) = inspect_json(&[&format!(":{p}"), "--netns", &ns.name]);
    assert_eq!(code, 0);
    assert_eq!(v["sockets"].as_array().map(Vec::len), Some(1), "{v:#}");
    assert_eq!(v["sockets"][0]["netns"]["inode"], ns.inode());
    // And to our own: only the host's.
    let (_, v, _) = inspect_json(&[&format!(":{p}"), "--netns", "self"]);
    assert_eq!(v["sockets"].as_array().map(Vec::len), Some(1), "{v:#}");
    assert_eq!(pids(&v["sockets"][0]), host.pids);
    drop(clients);
}

/// A socket created inside a namespace and held by a process outside it
/// (this test process): found by its namespace's dump, with the holder's
/// own namespace shown because it differs.
#[test]
fn holder_outside_its_sockets_namespace() {
    if !require("holder_outside_its_sockets_namespace", &["ip"]) {
        return;
    }
    let ns = NetNs::new();
    let listener = ns.enter(|| std::net::TcpListener::bind("127.0.0.1:0").expect("bind inside"));
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
        .expect("fd")
        .ino();
    let (code, v, err) = inspect_json(&[&format!("inode:{inode}")]);
    assert_eq!(code, 0, "{err}");
    let s = &v["sockets"][0];
    assert_eq!(s["inode"], inode);
    assert_eq!(s["netns"]["inode"], ns.inode());
    let me = std::process::id();
    let h = s["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .find(|h| h["pid"] == me)
        .unwrap_or_else(|| panic!("this test process holds it: {s:#}"));
    let own = std::fs::metadata("/proc/self/ns/net").expect("ns").ino();
    assert_eq!(
        h["netns"], own,
        "the holder's own namespace, shown as it differs"
    );
    let out = output(sockmap(&["inspect", &format!("inode:{inode}")]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("pid {me} is itself in netns {own}")),
        "{text}"
    );
    drop(listener);
}

/// Not root: our own namespace only, and one warning saying how many
/// others exist and that reading them needs root.
#[test]
fn not_root_sees_its_own_namespace_and_is_told() {
    if !require(
        "not_root_sees_its_own_namespace_and_is_told",
        &["ip", "setpriv"],
    ) {
        return;
    }
    let ns = NetNs::new();
    let host = Served::start(&[], &["--port", "0", "--workers", "1"]);
    let port = host.port.to_string();
    let prefix = ["ip", "netns", "exec", ns.name.as_str()];
    let _inside = Served::start(&prefix, &["--port", &port, "--workers", "1"]);
    let target = format!(":{port}");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["inspect", &target, "--json"]);
    let out = output(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let socks = v["sockets"].as_array().expect("sockets");
    assert_eq!(socks.len(), 1, "only our namespace's listener: {v:#}");
    assert_ne!(socks[0]["netns"]["inode"], ns.inode());
    let warnings: Vec<&Value> = v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["kind"] == "netns_not_inspected")
        .collect();
    assert_eq!(warnings.len(), 1, "one namespace warning: {v:#}");
    let w = warnings[0];
    // The named namespace is visible to anyone under /run/netns: at least 1.
    assert!(w["count"].as_u64().expect("count") >= 1, "{w}");
    let message = w["message"].as_str().expect("message");
    assert!(message.contains("not inspected"), "{message}");
    let hint = w["hint"].as_str().expect("hint");
    assert!(hint.contains("needs root (CAP_SYS_ADMIN)"), "{hint}");
    // Text output says it on stderr and exits 0.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["inspect", &target]);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:") && err.contains("not inspected"),
        "{err}"
    );
}

/// A listener only inside a namespace: from the host, the default run
/// shows it and says it is not in this namespace; narrowed to our own,
/// inspect, watch and check each say nothing matched (and inspect says
/// where it is instead), with their documented exit codes.
#[test]
fn nothing_here_something_elsewhere() {
    if !require("nothing_here_something_elsewhere", &["ip"]) {
        return;
    }
    let ns = NetNs::new();
    // A port free on the host: bound there first, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let prefix = ["ip", "netns", "exec", ns.name.as_str()];
    let _inside = Served::start(&prefix, &["--port", &port, "--workers", "1"]);
    let target = format!("127.0.0.1:{port}");

    let out = output(sockmap(&["inspect", &target]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "nothing matches {target} in this network namespace"
        )),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("(ip netns {})", ns.name)),
        "the namespace is labelled"
    );

    let out = output(sockmap(&["inspect", &target, "--netns", "self"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 socket matches in other network namespaces")
            && err.contains(&format!("ip netns {}", ns.name)),
        "{err}"
    );

    let out = output(sockmap(&[
        "watch",
        &target,
        "--netns",
        "self",
        "--count",
        "2",
        "--interval",
        "20ms",
        "--json",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "watch with nothing: exit 1; {err}"
    );
    assert!(err.contains("nothing matched"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "still 2 samples"
    );

    let out = output(sockmap(&["check", &target, "--netns", "self"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL listening"));
    // In its namespace, check finds it.
    let out = output(sockmap(&["check", &target, "--netns", &ns.name]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And as a target form.
    let (code, v, _) = inspect_json(&[&target, &format!("netns:{}", ns.name)]);
    assert_eq!(code, 0);
    assert_eq!(v["sockets"].as_array().map(Vec::len), Some(1));
}

/// Per-namespace host figures: somaxconn read from inside the namespace
/// (a listener's backlog clamped to it), and watch's TcpExt counters are
/// the namespace's own (overflows on a full queue in there).
#[test]
fn namespace_sysctls_and_counters_are_its_own() {
    if !require(
        "namespace_sysctls_and_counters_are_its_own",
        &["ip", "sysctl"],
    ) {
        return;
    }
    let ns = NetNs::new();
    ns.exec(&["sysctl", "-q", "-w", "net.core.somaxconn=7"]);
    let prefix = ["ip", "netns", "exec", ns.name.as_str()];
    let inside = Served::start(
        &prefix,
        &[
            "--port",
            "0",
            "--workers",
            "1",
            "--stall",
            "--backlog",
            "100",
        ],
    );
    let target = format!("127.0.0.1:{}", inside.port);
    let (code, v, err) = inspect_json(&[&target, "--netns", &ns.name]);
    assert_eq!(code, 0, "{err}");
    let s = &v["sockets"][0];
    assert_eq!(
        s["accept_queue"]["backlog"], 7,
        "listen(100) clamped to the namespace's 7"
    );
    assert_eq!(s["backlog_clamped"], true, "{s:#}");

    // watch: one sample, then overflow the queue inside, then more samples.
    let mut cmd = sockmap(&[
        "watch",
        &target,
        "--netns",
        &ns.name,
        "--count",
        "4",
        "--interval",
        "300ms",
        "--json",
    ]);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("watch");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        child.stdout.take().expect("stdout"),
    ));
    let first = lines.next().expect("a first sample").expect("read");
    let v: Value = serde_json::from_str(&first).expect("a JSON sample");
    assert_eq!(v["sockets"][0]["netns"], ns.inode(), "{first}");
    let port = inside.port;
    let clients: Vec<TcpStream> = ns.enter(move || {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        (0..20)
            .filter_map(|_| {
                TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(50)).ok()
            })
            .collect()
    });
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = child.wait();
    let overflows: u64 = rest
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["counters"]["listen_overflows"].as_u64())
        .sum();
    assert!(
        overflows > 0,
        "the namespace's ListenOverflows moved ({} clients got in): {rest:?}",
        clients.len()
    );
}
