//! Live: Docker containers seen from the host. Images are built from
//! nothing (`docker import` of the sockmap binary and its libraries; no
//! registry, no pull); containers and images have unique names and are
//! removed on drop. Only loopback and the test's own containers'
//! addresses are used. Needs root, docker, strip (binutils), ldd, tar and
//! nsenter, ss; with `CI` set a missing piece fails the test.

mod support;

use serde_json::Value;
use support::docker::{userland_proxy, Container, Image};
use support::{inspect_json, output, require, sockmap};

const TOOLS: &[&str] = &["docker", "ldd", "tar", "strip", "nsenter", "ss"];

const SERVE: &[&str] = &[
    "/sockmap",
    "serve",
    "--workers",
    "3",
    "--addr",
    "0.0.0.0",
    "--port",
    "8000",
    "--json",
];

fn sockets(v: &Value) -> &Vec<Value> {
    v["sockets"].as_array().expect("sockets")
}

fn holder_pids(s: &Value) -> Vec<u32> {
    let mut v: Vec<u32> = s["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .map(|h| h["pid"].as_u64().expect("pid") as u32)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn netns_inode(pid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .expect("ns/net")
        .ino()
}

/// The container's listener on :8000 in `v`.
fn container_listener<'a>(v: &'a Value, c: &Container) -> &'a Value {
    let hits: Vec<&Value> = sockets(v)
        .iter()
        .filter(|s| s["netns"]["container"]["id"] == c.id.as_str() && s["local_port"] == 8000)
        .collect();
    assert_eq!(hits.len(), 1, "one listener of container {}: {v:#}", c.name);
    hits[0]
}

/// `ss -tlnpe` inside the container's namespace: the inode on :8000.
fn ss_inode(c: &Container) -> u64 {
    let out = output({
        let mut cmd = std::process::Command::new("nsenter");
        cmd.args([
            "-t",
            &c.pid.to_string(),
            "-n",
            "ss",
            "-tlnpe",
            "sport = :8000",
        ]);
        cmd
    });
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("ino:"))
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("ss in the container: {text}"))
}

/// A container running a 3-worker fork server on its :8000, published on
/// a loopback host port: from the host, `inspect :8000`, `inspect
/// :HOSTPORT` and `inspect` all show the container's listener (3
/// holders, one inode, docker's container id) and the docker-proxy
/// listener with where it forwards.
#[test]
fn published_container_both_ends() {
    if !require("published_container_both_ends", TOOLS) {
        return;
    }
    let image = Image::build();
    let c = Container::run(&image, &["-p", "127.0.0.1::8000"], SERVE, "\"ready\"");
    let host_port = c.host_port(8000);
    let ns = netns_inode(c.pid);
    let proxy = userland_proxy();
    if !proxy {
        let msg = "dockerd runs without userland-proxy: no docker-proxy to check";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIPPED (part) {msg}");
    }

    for args in [
        vec![":8000".to_string()],
        vec![format!(":{host_port}")],
        vec![],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, v, err) = inspect_json(&args);
        assert_eq!(code, 0, "inspect {args:?}: {err}");
        let s = container_listener(&v, &c);
        let pids = holder_pids(s);
        assert_eq!(pids.len(), 3, "3 forked holders: {s:#}");
        let inside = c.pids();
        assert!(
            pids.iter().all(|p| inside.contains(p)),
            "{pids:?} ⊂ {inside:?}"
        );
        let label = &s["netns"];
        assert_eq!(label["inode"], ns);
        assert_eq!(label["container"]["runtime"], "docker");
        assert_eq!(label["container"]["name"], c.name.as_str());
        assert_eq!(s["inode"], ss_inode(&c), "the inode ss shows inside");
        let group: Vec<&Value> = v["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter(|g| g["netns"] == ns && g["local_port"] == 8000)
            .collect();
        assert_eq!(group.len(), 1);
        assert_eq!(group[0]["kind"], "shared");
        assert_eq!(group[0]["holders"], 3);
        if !proxy {
            continue;
        }
        let fwd: Vec<&Value> = sockets(&v)
            .iter()
            .filter(|s| s["local_port"] == host_port && s["forward"].is_object())
            .collect();
        assert_eq!(
            fwd.len(),
            1,
            "the docker-proxy listener, inspect {args:?}: {v:#}"
        );
        let f = &fwd[0]["forward"];
        assert_eq!(f["via"], "docker-proxy");
        assert_eq!(f["to_addr"], c.ip.as_str());
        assert_eq!(f["to_port"], 8000);
        assert_eq!(f["to_netns"], ns);
        assert_eq!(f["to_inodes"], serde_json::json!([s["inode"]]));
        assert!(fwd[0]["holders"]
            .as_array()
            .expect("holders")
            .iter()
            .all(|h| h["comm"] == "docker-proxy"));
    }

    // The table names the container's namespace.
    let out = output(sockmap(&["inspect", ":8000"]));
    let text = String::from_utf8_lossy(&out.stdout);
    let short = &c.id[..12];
    assert!(
        text.contains(&format!("netns {ns} (container {short} {})", c.name)),
        "{text}"
    );
    if proxy {
        assert!(
            text.contains(&format!("each connection goes on to {}:8000", c.ip)),
            "{text}"
        );
    }
}

/// Two containers, each with its own :8000: two unrelated listeners, two
/// verdicts, not one SO_REUSEPORT group.
#[test]
fn two_containers_on_one_port_are_two_groups() {
    if !require("two_containers_on_one_port_are_two_groups", TOOLS) {
        return;
    }
    let image = Image::build();
    let a = Container::run(&image, &[], SERVE, "\"ready\"");
    let b = Container::run(&image, &[], SERVE, "\"ready\"");
    let (code, v, err) = inspect_json(&[":8000"]);
    assert_eq!(code, 0, "{err}");
    let (sa, sb) = (container_listener(&v, &a), container_listener(&v, &b));
    assert_ne!(sa["inode"], sb["inode"]);
    assert_ne!(sa["netns"]["inode"], sb["netns"]["inode"]);
    for (s, c) in [(sa, &a), (sb, &b)] {
        assert_eq!(holder_pids(s).len(), 3);
        assert_ne!(s["reuseport"], true, "not a reuseport group: {s:#}");
        let g: Vec<&Value> = v["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter(|g| g["netns"] == netns_inode(c.pid) && g["local_port"] == 8000)
            .collect();
        assert_eq!(g.len(), 1, "{v:#}");
        assert_eq!(g[0]["kind"], "shared");
        assert_eq!(g[0]["inodes"], serde_json::json!([s["inode"]]));
    }
    // `check --reuseport` on :8000 must not call the two one group.
    let out = output(sockmap(&["check", ":8000", "--reuseport"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
