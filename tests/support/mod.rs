//! Shared by the namespace and container tests (`mod support;`): a
//! uniquely named `ip netns` that is deleted on drop, a `sockmap serve`
//! started directly or inside one (its process group killed on drop),
//! running a closure on a thread moved into a namespace (so the sockets it
//! makes live there), and `docker` (images built from nothing,
//! containers). Every wait is bounded.
#![allow(dead_code)]

pub mod docker;

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_sockmap");

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether a live test may run: root and the tools it names. Outside CI a
/// missing piece skips with a loud line; with `CI` set it fails.
pub fn require(test: &str, tools: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !is_root() {
        missing.push("root".into());
    }
    for t in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("`{t}`"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{test}: needs {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set: not skipping)");
    }
    eprintln!("SKIPPED {msg}");
    false
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name no other test run uses: prefix, our pid, a counter.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ip netns add NAME` with loopback up; `ip netns del NAME` on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new() -> NetNs {
        let ns = NetNs {
            name: unique("smt"),
        };
        run(Command::new("ip").args(["netns", "add", &ns.name]));
        run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }

    /// The nsfs inode of the namespace (what sockmap reports).
    pub fn inode(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/run/netns/{}", self.name))
            .expect("stat /run/netns/NAME")
            .ino()
    }

    /// `ip netns exec NAME ARGS...`, to completion, bounded.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("timeout");
        cmd.args(["30", "ip", "netns", "exec", &self.name])
            .args(args);
        String::from_utf8_lossy(&run(&mut cmd).stdout).into_owned()
    }

    /// Run `f` on a thread that moved into this namespace: sockets it
    /// creates belong here. The thread ends with `f`.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open /run/netns/NAME");
            // SAFETY: setns on a valid fd; affects this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `sockmap serve --json ARGS` started through `PREFIX...` (e.g. `ip netns
/// exec NAME`), own process group, SIGKILLed (group) on drop.
pub struct Served {
    pub child: Child,
    pub port: u16,
    pub pids: Vec<u32>,
}

impl Served {
    pub fn start(prefix: &[&str], args: &[&str]) -> Served {
        let (prog, pre) = prefix
            .split_first()
            .map_or((BIN, &[][..]), |(p, r)| (*p, r));
        let mut cmd = Command::new(prog);
        cmd.args(pre);
        if !prefix.is_empty() {
            cmd.arg(BIN);
        }
        cmd.arg("serve")
            .arg("--json")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut served = Served {
            child,
            port: 0,
            pids: Vec::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve's ready line within 30 s");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
        served.port = v["port"].as_u64().expect("port") as u16;
        served.pids = v["pids"]
            .as_array()
            .expect("pids")
            .iter()
            .map(|p| p.as_u64().expect("pid") as u32)
            .collect();
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SAFETY: our own child's process group (not reaped yet).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A sockmap command in its own process group, dying with this thread.
pub fn sockmap(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).process_group(0);
    cmd
}

/// Run to completion within 60 s (else kill the group and panic).
pub fn output(mut cmd: Command) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: the group of a child that is still running.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within 60 s");
        }
    }
}

/// `sockmap inspect ARGS --json`: the exit code and the document.
pub fn inspect_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = output(sockmap(&all));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
