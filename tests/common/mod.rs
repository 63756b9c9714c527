//! Helpers shared by the live integration tests (`mod common;`).
//!
//! Every process a test starts is its own process group and is SIGKILLed
//! (whole group) when its handle drops; every wait has a deadline; nothing
//! asserts on timing. Only loopback addresses are used.
//!
//! API:
//! - [`BIN`]: the sockmap binary under test.
//! - [`ServeProc::start`]`(args)`: run `sockmap serve --port 0 --json ARGS`,
//!   wait (bounded) for the ready line; gives `port`, `pids` (parent
//!   first), `mode` and the whole [`ServeReady`] line.
//!   [`ServeProc::terminate`] sends SIGTERM and returns stdout after the
//!   ready line (asserting exit 0 and that no worker outlived the parent);
//!   [`ServeProc::stop`] does the same without asserting;
//!   [`ServeProc::kill_worker`] kills one child. Dropping a `ServeProc`
//!   SIGKILLs its process group.
//! - [`serve_report`]: the `{"event":"done",...}` line from that stdout.
//!   Serve's and load's JSON lines are read with the very types that
//!   write them (`sockmap::lab::message`, strict: unknown fields fail);
//!   the committed schemas and tests/schema.rs keep those types honest.
//! - [`sockmap`]`(args)`: a [`Command`] for the binary, in its own process
//!   group with piped output; [`run_bounded`]`(cmd, limit)` runs it to the
//!   end or kills it at the deadline (and panics).
//! - [`require`]`(have, what)`: the one way a test skips for a missing
//!   tool or privilege — loudly outside CI, a failure when `CI` is set;
//!   [`is_root`], [`have_command`], [`ss_available`], [`ipv6_loopback`].
//! - [`pid_alive`], [`wait_until`], and the independent /proc oracle (the
//!   procfs crate, not sockmap's own parsing): [`listening_inodes`],
//!   [`socket_inodes`], [`accept_queue_depth`].
//! - [`json`]: the tests' own strict reader of the inspect report, the
//!   check outcome and the watch sample; [`inspect_json`]`(target)` runs
//!   `inspect TARGET --json` and reads it.
//!
//! The started processes also get `PR_SET_PDEATHSIG(SIGKILL)`: if the
//! test binary dies they die too. That signal follows the *thread* that
//! spawned them, so start and drop a `ServeProc` on the same thread.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod json;

pub const BIN: &str = env!("CARGO_BIN_EXE_sockmap");

/// Generous: a loaded 2-core CI box may take a while to fork.
pub const READY_LIMIT: Duration = Duration::from_secs(30);
/// How long serve gets to stop after SIGTERM.
pub const STOP_LIMIT: Duration = Duration::from_secs(30);

/// [`ServeReady`] by its shorter name (tests/safety.rs reads it so).
#[allow(unused_imports)]
pub use sockmap::lab::message::ServeReady as Ready;
pub use sockmap::lab::message::{ServeMode, ServeReady, ServeReport};

/// The report line (`{"event":"done",...}`) in serve's `stdout`, read
/// strictly; panics if there is none or it does not read.
#[track_caller]
pub fn serve_report(stdout: &str) -> ServeReport {
    let line = stdout
        .lines()
        .find(|l| l.contains("\"event\":\"done\""))
        .unwrap_or_else(|| panic!("no report line in serve's output: {stdout:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad report line {line:?}: {e}"))
}

/// A command for the sockmap binary: own process group, stdin null,
/// stdout/stderr piped, dies if the spawning thread dies.
pub fn sockmap(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Run `cmd` to completion, at most `limit`; on overrun SIGKILL its
/// process group and panic. The command must pipe stdout and stderr (as
/// [`sockmap`] does).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.spawn().expect("spawn sockmap");
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let exited = wait_exited(child.id(), limit);
    // The leader is not reaped yet, so its process group id is still ours.
    kill_group(&child);
    let status = child.wait().expect("wait");
    let stdout = join_bytes(stdout);
    let stderr = join_bytes(stderr);
    assert!(
        exited,
        "{cmd:?} did not finish within {limit:?}; stderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    Output {
        status,
        stdout,
        stderr,
    }
}

/// What [`ServeProc::stop`] saw.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    /// Everything after the ready line.
    pub stdout: String,
    pub stderr: String,
    /// Worker pids still alive after the parent exited (should be none).
    pub survivors: Vec<u32>,
}

/// A `sockmap serve` the test owns. Dropping it SIGKILLs the group.
pub struct ServeProc {
    pub port: u16,
    /// Parent first, then the children.
    pub pids: Vec<u32>,
    pub mode: ServeMode,
    pub ready: ServeReady,
    /// The ready line as serve printed it.
    pub ready_line: String,
    pub child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Disconnects when the stderr reader has seen EOF.
    stderr_done: Receiver<()>,
    reaped: bool,
}

impl ServeProc {
    /// Start `sockmap serve --port 0 --json ARGS` (loopback is serve's
    /// default address) and wait for its ready line.
    pub fn start(args: &[&str]) -> ServeProc {
        let mut all = vec!["serve", "--port", "0", "--json"];
        all.extend_from_slice(args);
        let mut child = sockmap(&all).spawn().expect("spawn sockmap serve");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        let (done_tx, stderr_done) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _done = done_tx; // dropped at EOF: the receiver disconnects
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let read = lines
            .recv_timeout(READY_LIMIT)
            .map_err(|e| format!("no ready line ({e})"))
            .and_then(|line| match serde_json::from_str::<ServeReady>(&line) {
                Ok(ready) => Ok((ready, line)),
                Err(e) => Err(format!("bad ready line {line:?}: {e}")),
            });
        let (ready, ready_line) = match read {
            Ok(read) => read,
            Err(why) => {
                kill_group(&child);
                let _ = child.wait();
                let stderr = stderr.lock().unwrap().clone();
                panic!("sockmap serve {args:?}: {why}; stderr: {stderr}");
            }
        };
        let p = ServeProc {
            port: ready.port,
            pids: ready.pids.clone(),
            mode: ready.mode,
            ready,
            ready_line,
            child,
            lines,
            stderr,
            stderr_done,
            reaped: false,
        };
        assert_eq!(p.pids.first(), Some(&p.child.id()), "parent pid first");
        p
    }

    /// The parent's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child workers' pids.
    pub fn children(&self) -> &[u32] {
        &self.pids[1..]
    }

    /// What serve wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Send `sig` to the parent only.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGKILL the child worker `pid`; wait (bounded) until serve says on
    /// stderr that it died.
    pub fn kill_worker(&self, pid: u32) {
        assert!(self.children().contains(&pid), "{pid} is not a worker");
        // SAFETY: kill(2) on a worker of the serve this test owns, alive
        // (unreaped) until the parent reaps it.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let said = format!("worker {pid} died: killed by signal 9");
        assert!(
            wait_until(Duration::from_secs(20), || self
                .stderr_so_far()
                .contains(&said)),
            "stderr: {}",
            self.stderr_so_far()
        );
    }

    /// SIGTERM, wait (bounded) for exit; assert exit 0 and no surviving
    /// worker; return stdout after the ready line.
    pub fn terminate(self) -> String {
        let s = self.stop();
        assert!(
            s.status.success(),
            "serve exited with {}; stderr: {}",
            s.status,
            s.stderr
        );
        assert!(
            s.survivors.is_empty(),
            "workers {:?} outlived the parent",
            s.survivors
        );
        s.stdout
    }

    /// SIGTERM, wait (bounded) for exit, report. Panics only if serve does
    /// not exit within [`STOP_LIMIT`].
    pub fn stop(mut self) -> Stopped {
        self.signal(libc::SIGTERM);
        let exited = wait_exited(self.child.id(), STOP_LIMIT);
        // The parent reaps its workers before it exits: any still alive now
        // is a leak. Give the kernel a moment to finish SIGKILLed ones.
        let children = self.children().to_vec();
        wait_until(Duration::from_secs(5), || {
            children.iter().all(|&p| !pid_alive(p))
        });
        let survivors = children.into_iter().filter(|&p| pid_alive(p)).collect();
        kill_group(&self.child);
        let status = self.child.wait().expect("wait for serve");
        self.reaped = true;
        assert!(
            exited,
            "serve did not exit within {STOP_LIMIT:?} of SIGTERM; stderr: {}",
            self.stderr_so_far()
        );
        // The pipe's write ends are gone with the processes: EOF soon.
        let mut stdout = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    stdout.push_str(&line);
                    stdout.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("serve's stdout stayed open"),
            }
        }
        // The stderr reader has everything once it saw EOF (bounded).
        let eof = self.stderr_done.recv_timeout(Duration::from_secs(10));
        assert!(
            matches!(eof, Err(RecvTimeoutError::Disconnected)),
            "serve's stderr stayed open"
        );
        Stopped {
            status,
            stdout,
            stderr: self.stderr_so_far(),
            survivors,
        }
    }
}

impl Drop for ServeProc {
    fn drop(&mut self) {
        if !self.reaped {
            // Unreaped leader: the process group id cannot have been reused.
            kill_group(&self.child);
            let _ = self.child.wait();
        }
    }
}

/// SIGKILL `child`'s process group. Call only while `child` is unreaped.
pub fn kill_group(child: &Child) {
    // SAFETY: kill(2) on a process group we created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
}

/// Wait up to `limit` for `pid` (our child) to exit, WITHOUT reaping it
/// (so its pid and process group id stay reserved). True if it exited.
pub fn wait_exited(pid: u32, limit: Duration) -> bool {
    wait_until(limit, || {
        // SAFETY: waitid with WNOWAIT only peeks; info is plain data.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            r == -1 || info.si_pid() != 0
        }
    })
}

/// Poll `f` every 10 ms until it is true or `limit` passes; its last answer.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Alive = has a /proc entry and is not a zombie (a reaped process has no
/// entry; an unreaped dead one is 'Z').
pub fn pid_alive(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|st| !matches!(st.state, 'Z' | 'X'))
}

/// Whether `CI` is set: then nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The one gate for a test that needs a tool, a privilege or a feature:
/// `true` when `have`. Otherwise, outside CI, says loudly on stderr that
/// the test is skipped and returns `false`; with `CI` set it panics, so a
/// green CI means every check ran. `what` names what is missing and how
/// to get it, e.g. "`ss` (apt-get install iproute2)".
#[track_caller]
pub fn require(have: bool, what: &str) -> bool {
    if have {
        return true;
    }
    let at = std::panic::Location::caller();
    if in_ci() {
        panic!("{at}: this test needs {what}, and with CI set no test may skip (.ci/run installs what the tests need)");
    }
    eprintln!("SKIPPED {at}: needs {what} (with CI set this fails)");
    false
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `prog` is on PATH and runs (`prog arg` exits 0).
pub fn have_command(prog: &str, arg: &str) -> bool {
    Command::new(prog)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn ss_available() -> bool {
    have_command("ss", "-V")
}

/// This host has an IPv6 loopback (`::1` can be bound).
pub fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Every TCP socket in this network namespace, from /proc/net/tcp{,6} as
/// the procfs crate parses them.
fn tcp_entries() -> Vec<procfs::net::TcpNetEntry> {
    let mut rows = procfs::net::tcp().expect("read /proc/net/tcp");
    // A host without IPv6 has no tcp6 file, and no IPv6 sockets.
    rows.extend(procfs::net::tcp6().unwrap_or_default());
    rows
}

fn listeners_on(port: u16) -> impl Iterator<Item = procfs::net::TcpNetEntry> {
    tcp_entries()
        .into_iter()
        .filter(move |r| r.local_address.port() == port && r.state == procfs::net::TcpState::Listen)
}

/// Inodes of the listening TCP sockets on `port`, sorted.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    let mut v: Vec<u64> = listeners_on(port).map(|r| r.inode).collect();
    v.sort_unstable();
    v
}

/// Connections waiting in the accept queues of the listeners on `port`.
pub fn accept_queue_depth(port: u16) -> u64 {
    listeners_on(port).map(|r| u64::from(r.rx_queue)).sum()
}

/// Socket inodes `pid` holds open (via /proc/PID/fd), sorted.
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = procfs::process::Process::new(pid as i32).and_then(|p| p.fd()) else {
        return Vec::new();
    };
    let mut v: Vec<u64> = fds
        .filter_map(|fd| match fd.ok()?.target {
            procfs::process::FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Option<JoinHandle<Vec<u8>>> {
    r.map(|mut r| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    })
}

fn join_bytes(h: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    h.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// `sockmap inspect TARGET --json`, bounded to 60 s; asserts exit 0 and
/// reads the report strictly ([`json::Report`]).
#[track_caller]
pub fn inspect_json(target: &str) -> json::Report {
    let mut cmd = sockmap(&["inspect", target, "--json"]);
    cmd.stdin(Stdio::null());
    let out = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "inspect {target} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json::report(&out.stdout)
}

/// Processes whose fd table can be listed but whose fd links this test
/// may not read (EACCES: e.g. a process with capabilities we lack). While
/// there are any, sockmap rightly says holders are a lower bound ("at
/// least") and a holder check is unknown; a test that expects exact
/// counts asks this first. The pids come from the procfs crate; the links
/// are read with std, because the crate's fd iterator skips the ones it
/// cannot read without saying so.
pub fn partly_readable_processes() -> Vec<i32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| {
        let pid = p.ok()?.pid;
        let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        let denied = dir.filter_map(Result::ok).any(|e| {
            std::fs::read_link(e.path())
                .is_err_and(|err| err.kind() == std::io::ErrorKind::PermissionDenied)
        });
        denied.then_some(pid)
    })
    .collect()
}

/// `"at least "` when some process's fds cannot be read (see
/// [`partly_readable_processes`]) and sockmap scans /proc, else `""`: how
/// a holder count in a verdict starts on this host.
pub fn at_least() -> &'static str {
    if holders_decided() {
        ""
    } else {
        "at least "
    }
}

/// Whether sockmap can name every holder here: it finds them with its BPF
/// scan (which sees every fd table, so another process's unreadable fds
/// leave no doubt), or no process's fds are unreadable.
pub fn holders_decided() -> bool {
    holder_scan_is_bpf() || partly_readable_processes().is_empty()
}

/// Whether `sockmap inspect` finds holders with its BPF scan on this host,
/// as its own JSON says for a listener of ours (asked once).
pub fn holder_scan_is_bpf() -> bool {
    static BPF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BPF.get_or_init(|| {
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            return false;
        };
        let Ok(addr) = l.local_addr() else {
            return false;
        };
        let mut cmd = sockmap(&["inspect", "--json", &addr.to_string()]);
        cmd.env_remove("SOCKMAP_NO_BPF");
        let out = run_bounded(cmd, Duration::from_secs(60));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|v| {
            v["scan"]["method"]
                .as_str()
                .is_some_and(|m| m.starts_with("bpf"))
        })
    })
}

/// Forks in one test binary run one at a time: a child forked by one test
/// would inherit another test's listener (fork copies every fd; CLOEXEC
/// only acts on exec) and rightly show up as its holder.
static FORKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Hold this while forking children that keep inherited fds.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORKING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forked children, SIGKILLed and reaped on drop.
pub struct Children(pub Vec<i32>);

impl Drop for Children {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: our own unreaped children.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}
