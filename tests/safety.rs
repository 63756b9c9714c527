//! An inspector run as root on hosts it does not trust: it must not change
//! what it inspects, must not let other processes write to the terminal,
//! and must not present a partial picture as a certain one. Listeners are
//! owned by this test process on loopback; children are forked here and
//! killed on drop.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::json::{self, Status, WarningKind};
use common::{run_bounded, sockmap};

const BIN: &str = env!("CARGO_BIN_EXE_sockmap");
const LIMIT: Duration = Duration::from_secs(60);

/// With `CI` set a missing privilege or tool fails the test; elsewhere
/// the test says loudly that it skips (`common::require`).
#[track_caller]
fn need(ok: bool, what: &str) -> bool {
    common::require(ok, what)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

use common::{serial, Children};

/// Fork a child that names itself `name` (PR_SET_NAME), optionally drops
/// to `nobody` (staying readable to nobody), and sleeps holding every fd
/// it inherited. Only async-signal-safe calls after fork.
fn fork_named(name: &[u8], to_nobody: bool) -> i32 {
    let mut cname = [0u8; 16];
    let n = name.len().min(15);
    cname[..n].copy_from_slice(&name[..n]);
    // SAFETY: the child calls only async-signal-safe functions and _exit.
    unsafe {
        let parent = libc::getpid();
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            libc::prctl(libc::PR_SET_NAME, cname.as_ptr());
            if to_nobody
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                    || libc::prctl(libc::PR_SET_DUMPABLE, 1) != 0)
            {
                libc::_exit(1);
            }
            loop {
                libc::pause();
            }
        }
        pid
    }
}

/// The name as /proc shows it, once the child has set it.
fn wait_for_name(pid: i32, name: &[u8]) {
    let want: Vec<u8> = name.iter().take(15).copied().collect();
    let seen = common::wait_until(Duration::from_secs(10), || {
        std::fs::read(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.strip_suffix(b"\n").unwrap_or(&c) == want.as_slice())
    });
    assert!(seen, "child {pid} did not take its name");
}

fn run(args: &[&str]) -> Output {
    run_bounded(sockmap(args), LIMIT)
}

fn as_nobody(args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_bounded(cmd, LIMIT)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// No byte that could drive a terminal: C0 controls but newline, DEL, and
/// no C1 control either (as UTF-8, U+0080..U+009F start with 0xC2).
fn assert_inert(what: &str, out: &[u8]) {
    let s = String::from_utf8(out.to_vec())
        .unwrap_or_else(|_| panic!("{what}: output is not UTF-8: {out:?}"));
    for c in s.chars() {
        assert!(
            c == '\n' || !c.is_control(),
            "{what}: raw control {c:?} reached the output:\n{s}"
        );
    }
}

const HOSTILE: [&[u8]; 5] = [
    b"\x1b]0;PWNED\x07",
    b"line\nbreak",
    b"tab\there",
    b"cr\rhide",
    b"\x1b[2Jclear",
];

#[test]
fn hostile_process_names_are_escaped_in_every_text_output() {
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let kids = Children(HOSTILE.iter().map(|n| fork_named(n, false)).collect());
    for (pid, name) in kids.0.iter().zip(HOSTILE) {
        wait_for_name(*pid, name);
    }
    let target = format!("127.0.0.1:{port}");

    let table = run(&["inspect", &target, "--color", "always"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table.stderr));
    // Colour is our own escape; take it out, then nothing may remain.
    let plain_table = text(&table.stdout)
        .replace("\x1b[1m", "")
        .replace("\x1b[0m", "")
        .replace("\x1b[22m", "");
    assert_inert("table", plain_table.as_bytes());
    for shown in [
        "\\x1b]0;PWNED\\x07",
        "line\\nbreak",
        "tab\\there",
        "cr\\rhide",
        "\\x1b[2Jclear",
    ] {
        assert!(
            plain_table.contains(shown),
            "{shown} missing:\n{plain_table}"
        );
    }
    assert!(
        plain_table.contains(&format!(
            "one socket shared by {}6 processes (fork",
            common::at_least()
        )),
        "{plain_table}"
    );

    let plain = run(&["inspect", &target, "--plain"]);
    assert_eq!(plain.status.code(), Some(0));
    assert_inert("--plain", &plain.stdout);
    let out = text(&plain.stdout);
    let mut lines = out.lines();
    let fields = lines.next().expect("a header").split_whitespace().count();
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 6, "one line per holder:\n{out}");
    for r in &rows {
        assert_eq!(r.split_whitespace().count(), fields, "{r:?} in\n{out}");
    }

    // JSON keeps the exact names (serde escapes them for JSON).
    let v = json::report(&run(&["inspect", &target, "--json"]).stdout);
    let comms: Vec<&str> = v.sockets[0]
        .holders
        .iter()
        .map(|h| h.comm.as_str().expect("a UTF-8 name is a JSON string"))
        .collect();
    for name in HOSTILE {
        let name = std::str::from_utf8(name).unwrap();
        assert!(comms.contains(&name), "{name:?} not in {comms:?}");
    }

    let check = run(&["check", &target, "--holders", "1"]);
    assert_eq!(check.status.code(), Some(1));
    assert_inert("check", &check.stdout);
    drop(kids);
}

/// A net_cls v1 hierarchy mounted on a temporary directory, with one
/// cgroup in it; unmounted and removed on drop.
struct NetCls {
    mount: PathBuf,
    group: PathBuf,
}

impl NetCls {
    fn new(classid: u32) -> Option<NetCls> {
        let mount = std::env::temp_dir().join(format!("sockmap-netcls-{}", std::process::id()));
        std::fs::create_dir_all(&mount).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "cgroup", "-o", "net_cls", "sockmap-test"])
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&mount);
            return None;
        }
        let group = mount.join("sockmap-test");
        let cg = NetCls { mount, group };
        std::fs::create_dir_all(&cg.group).ok()?;
        std::fs::write(cg.group.join("net_cls.classid"), classid.to_string()).ok()?;
        Some(cg)
    }
}

impl Drop for NetCls {
    fn drop(&mut self) {
        // The group empties once its processes have exited: bounded retry.
        common::wait_until(Duration::from_secs(10), || {
            std::fs::remove_dir(&self.group).is_ok() || !self.group.exists()
        });
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = std::fs::remove_dir(&self.mount);
    }
}

/// A server started through a shell, in its own process group: killed
/// (the whole group) and reaped on drop.
struct Group {
    child: std::process::Child,
    stdout: std::sync::mpsc::Receiver<String>,
}

impl Group {
    fn spawn(cmd: &mut Command) -> Group {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().expect("piped");
        let (tx, stdout) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Group { child, stdout }
    }

    /// The port from serve's JSON ready line.
    fn ready_port(&self) -> u16 {
        let line = self
            .stdout
            .recv_timeout(Duration::from_secs(30))
            .expect("serve printed its ready line");
        let ready: common::Ready = serde_json::from_str(&line).expect("serve's JSON ready line");
        ready.port
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: a signal to the group this test created.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// `class_id` of the listener on `port` as `ss --tos` reports it.
fn ss_class_id(port: u16) -> String {
    let out = Command::new("ss")
        .args(["-Htln", "--tos", &format!("sport = :{port}")])
        .output()
        .expect("ss runs");
    let s = text(&out.stdout);
    s.split_whitespace()
        .find_map(|w| w.strip_prefix("class_id:"))
        .unwrap_or_else(|| panic!("no class_id in ss output: {s:?}"))
        .to_string()
}

#[test]
fn inspecting_never_retags_the_socket_classid() {
    if !need(is_root(), "root (to mount a net_cls cgroup)") || !need(have("ss"), "ss") {
        return;
    }
    let Some(cg) = NetCls::new(0x0010_0001) else {
        need(false, "a mountable net_cls cgroup v1 hierarchy");
        return;
    };
    // A server created inside the cgroup: its listener carries the classid.
    let procs = cg.group.join("cgroup.procs");
    let script = format!(
        "echo $$ > '{}' && exec '{BIN}' serve --port 0 --workers 2 --json",
        procs.display()
    );
    let serve = Group::spawn(Command::new("sh").args(["-c", &script]));
    let port = serve.ready_port();
    assert_eq!(
        ss_class_id(port),
        "0x100001",
        "the cgroup tagged the socket"
    );
    let target = format!("127.0.0.1:{port}");

    assert_eq!(run(&["inspect", &target]).status.code(), Some(0));
    assert_eq!(ss_class_id(port), "0x100001", "after inspect");
    let w = run(&["watch", &target, "--count", "3", "--interval", "50ms"]);
    assert_eq!(w.status.code(), Some(0), "{}", text(&w.stderr));
    assert_eq!(ss_class_id(port), "0x100001", "after watch");
    let c = run(&["check", &target, "--holders", "2"]);
    // Decided (0), or unknown (4) while some process's fds are unreadable.
    let decided = common::holders_decided();
    assert_eq!(
        c.status.code(),
        Some(if decided { 0 } else { 4 }),
        "{}",
        text(&c.stdout)
    );
    assert_eq!(ss_class_id(port), "0x100001", "after check");

    // A connection accepted now inherits the listener's tag.
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    drop(serve);
    drop(cg);
}

#[test]
fn unreadable_processes_make_verdicts_say_at_least_and_checks_unknown() {
    if !need(is_root(), "root (to drop to nobody)") || !need(have("setpriv"), "setpriv") {
        return;
    }
    let _one = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // One holder nobody can read (this root process), one it can.
    let kids = Children(vec![fork_named(b"readable", true)]);
    wait_for_name(kids.0[0], b"readable");
    common::wait_until(Duration::from_secs(10), || {
        std::fs::metadata(format!("/proc/{}/fd", kids.0[0]))
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 65534)
    });
    let target = format!("127.0.0.1:{port}");

    let out = as_nobody(&["inspect", &target, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json::report(&out.stdout);
    let holders: Vec<u32> = v.sockets[0].holders.iter().map(|h| h.pid).collect();
    assert_eq!(holders, [kids.0[0] as u32], "only the readable child");
    let g = &v.groups[0];
    assert!(!g.holders_complete);
    let verdict = &g.verdict;
    assert!(
        verdict.starts_with("one socket held by at least 1 process (")
            && verdict.contains("could not be read"),
        "{verdict}"
    );
    assert!(v
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::ProcessesUnreadable && w.count >= 1));

    // The table's verdict on stdout says it too, not only stderr.
    let table = as_nobody(&["inspect", &target]);
    assert!(text(&table.stdout).contains("held by at least 1 process"));

    // A check that depends on the hidden holders is unknown (exit 4) ...
    let c = as_nobody(&["check", &target, "--holders", "2"]);
    assert_eq!(c.status.code(), Some(4), "{}", text(&c.stdout));
    assert!(
        text(&c.stdout).contains("UNKNOWN holders:"),
        "{}",
        text(&c.stdout)
    );
    let cj = as_nobody(&["check", &target, "--holders", "2", "--json"]);
    let cv = json::check(&cj.stdout);
    assert_eq!(cv.status, Status::Unknown);
    assert_eq!(cv.assertions[0].status, Status::Unknown);
    // ... one that does not is decided as usual.
    let q = as_nobody(&["check", &target, "--max-accept-queue", "10"]);
    assert_eq!(q.status.code(), Some(0), "{}", text(&q.stdout));
    // As root the same check is decided (unless some process's fds are
    // unreadable even to root here).
    let c = run(&["check", &target, "--holders", "2"]);
    let decided = common::holders_decided();
    assert_eq!(
        c.status.code(),
        Some(if decided { 0 } else { 4 }),
        "{}",
        text(&c.stdout)
    );
    drop(kids);
}

#[test]
fn hidepid_is_detected_and_a_hidden_pid_is_not_called_missing() {
    if !need(is_root(), "root (to mount a private /proc)")
        || !need(have("unshare"), "unshare")
        || !need(have("setpriv"), "setpriv")
    {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let me = std::process::id();
    // A private mount namespace with /proc remounted hidepid=2, then
    // sockmap as nobody: root's processes are invisible, not denied.
    let script = format!(
        "mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid=65534 --regid=65534 \
         --clear-groups '{BIN}' \"$@\""
    );
    let run_hidden = |args: &[&str]| {
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_bounded(cmd, LIMIT)
    };
    let out = run_hidden(&["inspect", &format!("127.0.0.1:{port}"), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = json::report(&out.stdout);
    let kinds: Vec<WarningKind> = v.warnings.iter().map(|w| w.kind).collect();
    assert!(kinds.contains(&WarningKind::ProcHidden), "{kinds:?}");
    assert!(!v.groups[0].holders_complete);
    let verdict = &v.groups[0].verdict;
    assert!(verdict.contains("hidepid"), "{verdict}");

    let out = run_hidden(&["inspect", &format!("pid:{me}"), "--json"]);
    let v = json::report(&out.stdout);
    let w = &v.warnings;
    assert!(
        w.iter()
            .any(|w| w.kind == WarningKind::PidNotVisible && w.pid == Some(me)),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|w| w.kind == WarningKind::NoSuchProcess),
        "{w:?}"
    );
}

/// Run `BIN args` on a pseudo-terminal (util-linux `script`) with `env`.
/// `CI` is removed too: the colour conventions treat a CI run as able to
/// show colour whatever TERM says, and CI sets it for the test run.
fn on_tty(env: &[(&str, &str)], args: &str) -> String {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("'{BIN}' {args}"), "/dev/null"])
        .env_remove("CI")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    text(&run_bounded(cmd, LIMIT).stdout)
}

#[test]
fn colour_and_redraw_follow_the_terminal_conventions() {
    if !need(have("script"), "script (util-linux)") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let inspect = format!("inspect {target}");
    assert!(on_tty(&[("TERM", "xterm")], &inspect).contains("\x1b[1m"));
    assert!(!on_tty(&[("TERM", "dumb")], &inspect).contains('\x1b'));
    assert!(!on_tty(&[("TERM", "xterm"), ("NO_COLOR", "1")], &inspect).contains('\x1b'));
    assert!(!on_tty(&[("TERM", "xterm"), ("CLICOLOR", "0")], &inspect).contains('\x1b'));
    // Without a terminal, CLICOLOR_FORCE still asks for colour.
    let mut cmd = sockmap(&["inspect", &target]);
    cmd.env("CLICOLOR_FORCE", "1").env_remove("NO_COLOR");
    assert!(text(&run_bounded(cmd, LIMIT).stdout).contains("\x1b[1m"));

    let watch = format!("watch {target} --count 2 --interval 20ms");
    assert!(on_tty(&[("TERM", "xterm")], &watch).contains("\x1b[2J"));
    let dumb = on_tty(&[("TERM", "dumb")], &watch);
    assert!(!dumb.contains('\x1b'), "{dumb:?}");
    assert!(dumb.contains("sample 2"), "{dumb:?}");
    std::io::stderr().flush().ok();
}
