//! The command line as a user meets it: usage errors and their exit codes,
//! the clap definition's consistency, and the generated man pages and
//! completions (which must not drift from the committed `man/`).
//! No kernel access, no root: every case here fails before collecting.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

mod common;

fn sockmap() -> Command {
    let mut c = Command::cargo_bin("sockmap").expect("the sockmap binary is built");
    c.env_remove("RUST_BACKTRACE").env("NO_COLOR", "1");
    c
}

/// What a failed run printed.
struct Failure {
    stderr: String,
    stdout: String,
    code: Option<i32>,
}

fn run(args: &[&str]) -> Failure {
    let out = sockmap().args(args).output().expect("sockmap runs");
    Failure {
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        code: out.status.code(),
    }
}

/// Exit 2, nothing on stdout, no panic or backtrace; returns stderr's
/// first line.
fn usage_error(args: &[&str]) -> String {
    let f = run(args);
    let shown = format!("sockmap {args:?}: exit {:?}\n{}", f.code, f.stderr);
    assert_eq!(f.code, Some(2), "{shown}");
    assert!(f.stdout.is_empty(), "{shown}\nstdout: {}", f.stdout);
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!f.stderr.contains(bad), "{shown}");
    }
    let first = f.stderr.lines().next().unwrap_or_default().to_string();
    assert!(!first.trim().is_empty(), "{shown}");
    first
}

/// A target our parser rejects: exactly one line, naming the target.
fn bad_target(args: &[&str], target: &str, reason: &str) {
    let f = run(args);
    usage_error(args);
    let lines: Vec<&str> = f.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line for {args:?}, got {:?}", f.stderr);
    let want = format!("sockmap: invalid target '{target}': ");
    assert!(
        lines[0].starts_with(&want),
        "{:?} should start with {want:?}",
        lines[0]
    );
    assert!(
        lines[0].contains(reason),
        "{:?} should say {reason:?}",
        lines[0]
    );
}

/// A flag clap rejects: clap may add usage lines, but the first line is an
/// error that names the bad value.
fn bad_flag(args: &[&str], named: &str) {
    let first = usage_error(args);
    assert!(first.starts_with("error: "), "{args:?}: {first}");
    assert!(
        first.contains(named),
        "{args:?}: {first:?} should name {named:?}"
    );
}

#[test]
fn clap_definition_is_consistent() {
    sockmap::cli::command().debug_assert();
}

#[test]
fn bad_targets_get_one_line_and_exit_2() {
    let long_comm = "comm:0123456789abcdef";
    let long_path = format!("unix:/{}", "a".repeat(108));
    let cases = [
        (":99999", "invalid port '99999'"),
        (":0", "invalid port '0'"),
        (":", "missing port"),
        ("foo", "unknown service 'foo'"),
        ("1.2.3:80", "invalid IPv4 address '1.2.3'"),
        ("1.2.3", "invalid IPv4 address '1.2.3'"),
        ("[::1", "unclosed '['"),
        ("pid:abc", "invalid pid 'abc'"),
        ("inode:-1", "invalid inode '-1'"),
        ("localhost:80", "not a name"),
        ("::1:80", "write [::1]:80 for port 80"),
        ("", "expected a port"),
        // The forms added to the grammar, each bad part named.
        ("tcp:", "missing port or address after 'tcp:'"),
        ("udp:", "missing port or address after 'udp:'"),
        (
            "udp:pid:1",
            "'udp:' goes before a port or an address, not 'pid:'",
        ),
        ("udp:99999", "invalid port '99999'"),
        ("udp:1.2.3:53", "invalid IPv4 address '1.2.3'"),
        (":8010-8000", "reversed port range '8010-8000'"),
        (":0-10", "invalid port '0'"),
        (":1-70000", "invalid port '70000'"),
        (":80,", "empty item in the port list '80,'"),
        (":80,,443", "empty item in the port list '80,,443'"),
        (":nosuchservice", "unknown service 'nosuchservice'"),
        ("*:", "missing port"),
        ("*:0", "invalid port '0'"),
        ("[::]:x y", "invalid port 'x y'"),
        ("unix:", "missing path after 'unix:'"),
        ("unix:@", "missing abstract name after 'unix:@'"),
        (
            long_path.as_str(),
            "is 109 bytes: at most 108 fit in sun_path",
        ),
        ("comm:", "missing command name after 'comm:'"),
        (
            long_comm,
            "is 16 bytes: the kernel keeps 15, so write 'comm:0123456789abcde'",
        ),
        ("netns:", "missing namespace after 'netns:'"),
        ("netns:a/b", "invalid namespace name 'a/b'"),
        ("netns:0", "invalid namespace inode '0'"),
        ("netns:4294967296", "namespace inodes are 32-bit"),
    ];
    for (target, reason) in cases {
        bad_target(&["inspect", target], target, reason);
    }
    // The same parser behind every subcommand that takes targets, and a
    // bad target among good ones.
    bad_target(&["watch", ":0"], ":0", "'0'");
    bad_target(&["watch", "udp:0"], "udp:0", "'0'");
    bad_target(&["check", "pid:abc"], "pid:abc", "'abc'");
    bad_target(&["check", "unix:"], "unix:", "missing path");
    bad_target(
        &["check", ":80", "--holders", "2", ":99999"],
        ":99999",
        "'99999'",
    );
    bad_target(&["inspect", ":80", "foo"], "foo", "unknown service");
    bad_target(
        &["inspect", "comm:nginx", ":80-"],
        ":80-",
        "invalid port '80-'",
    );
    // `--` lets a target start with '-'; it is still ours to reject.
    bad_target(&["inspect", "--", "-1"], "-1", "invalid port '-1'");
}

/// Every good form of TARGET is accepted. `check` parses its targets before
/// it validates its assertions, so a contradiction (exit 2, naming the two
/// flags) proves the target parsed, without asking the kernel anything.
#[test]
fn good_targets_of_every_form_are_accepted() {
    let forms = [
        ":8000",
        "8000",
        "127.0.0.1:8000",
        "[::1]:8000",
        "0.0.0.0:8000",
        "[::]:8000",
        "*:2024",
        "*",
        "127.0.0.1",
        "::1",
        "[::1]",
        "tcp:8000",
        "udp:53",
        "udp:127.0.0.1:53",
        "udp:[::1]:53",
        "udp:*:53",
        ":8000-8010",
        ":80,443",
        "8000,8001",
        ":80,8000-8010",
        "unix:/run/php/fpm.sock",
        "unix:@uwsgi",
        "pid:1",
        "inode:4322",
        "comm:nginx",
        "netns:blue",
        "netns:4026531840",
    ];
    for t in forms {
        let first = usage_error(&["check", t, "--shared", "--reuseport"]);
        assert_eq!(
            first,
            "sockmap: contradictory assertions: --shared and --reuseport cannot both hold \
             (shared is one listening socket, reuseport several)",
            "{t}"
        );
    }
}

/// Service names come from /etc/services (the netbase package on Debian).
#[test]
fn service_names_from_etc_services() {
    if !common::require(
        Path::new("/etc/services").exists(),
        "/etc/services (apt-get install netbase)",
    ) {
        return;
    }
    for t in [
        ":http",
        ":https",
        "http",
        "udp:domain",
        ":http,https",
        "tcp:ssh",
    ] {
        let first = usage_error(&["check", t, "--holders", "1", "--min-holders", "5"]);
        assert!(
            first.contains("--holders 1 and --min-holders 5"),
            "{t}: {first}"
        );
    }
    bad_target(
        &["inspect", ":nosuch-svc"],
        ":nosuch-svc",
        "unknown service 'nosuch-svc': not in /etc/services",
    );
    bad_target(
        &["inspect", "udp:ssh"],
        "udp:ssh",
        "service 'ssh' is tcp only in /etc/services, not udp",
    );
}

#[test]
fn contradictory_assertions_are_usage_errors_naming_both_flags() {
    let cases: &[(&[&str], &str)] = &[
        (&["--shared", "--reuseport"], "--shared and --reuseport"),
        (
            &["--holders", "1", "--min-holders", "5"],
            "--holders 1 and --min-holders 5",
        ),
        (&["--holders", "1", "--shared"], "--holders 1 and --shared"),
        (&["--holders", "0", "--pid", "7"], "--holders 0 and --pid 7"),
    ];
    for (flags, named) in cases {
        let mut args = vec!["check", ":8000"];
        args.extend_from_slice(flags);
        let first = usage_error(&args);
        assert!(
            first.starts_with("sockmap: contradictory assertions: "),
            "{first}"
        );
        assert!(first.contains(named), "{args:?}: {first}");
        assert_eq!(run(&args).stderr.lines().count(), 1, "{args:?}");
    }
}

#[test]
fn a_dash_value_is_named_even_when_clap_takes_it_for_a_flag() {
    bad_flag(&["inspect", "-1"], "'-1'");
    bad_flag(&["watch", ":80", "--count", "-1"], "'-1'");
    bad_flag(&["check", ":80", "--holders", "-1"], "'-1'");
}

#[test]
fn bad_flags_exit_2_and_name_the_value() {
    let cases: &[(&[&str], &str)] = &[
        (&["inspect", "--bogus"], "'--bogus'"),
        (
            &["check", ":80", "--max-accept-queue"],
            "--max-accept-queue",
        ),
        (&["watch", ":80", "--interval", "0"], "'0'"),
        (&["watch", ":80", "--interval", "5h"], "'5h'"),
        (&["watch", ":80", "--count", "0"], "'0'"),
        (&["serve", "--workers", "0"], "'0'"),
        (&["serve", "--port", "70000"], "'70000'"),
        (&["serve", "--addr", "foo"], "'foo'"),
        (&["load", "--connect", "127.0.0.1:1", "--size", "0"], "'0'"),
        (&["load", "--connect", "localhost:80"], "'localhost:80'"),
        (&["check", ":80", "--holders", "abc"], "'abc'"),
        (&["check", ":80", "--max-accept-ratio", "nan"], "'nan'"),
        (&["check", ":80", "--max-accept-ratio", "lots"], "'lots'"),
        (&["check", ":80", "--pid", "0"], "'0'"),
        (&["inspect", "--color", "sometimes"], "'sometimes'"),
        (&["inspect", "--json", "--plain"], "--plain"),
        (&["generate", "completions", "tcsh"], "'tcsh'"),
        (&["frobnicate"], "'frobnicate'"),
        (&["check"], "required"),
    ];
    for (args, named) in cases {
        bad_flag(args, named);
    }
}

#[test]
fn an_interval_clap_accepts_but_we_do_not_is_one_line() {
    let first = usage_error(&["watch", ":80", "--interval", "5ms"]);
    let f = run(&["watch", ":80", "--interval", "5ms"]);
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert!(first.starts_with("sockmap: invalid interval"), "{first}");
    assert!(first.contains("5ms"), "{first}");
}

#[test]
fn help_and_version_exit_0() {
    for args in [&["--help"][..], &["--version"], &["check", "--help"]] {
        let out = sockmap().args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

// ---- man pages ------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("sockmap-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create a temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pages(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".1"))
        .collect();
    names.sort();
    names
}

#[test]
fn committed_man_pages_match_the_clap_definition() {
    const FIX: &str = "run `cargo run -- generate man` and commit man/";
    let tmp = TempDir::new("man");
    let out = sockmap()
        .args(["generate", "man"])
        .arg(&tmp.0)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = pages(&tmp.0);
    let committed = pages(&repo().join("man"));
    assert!(fresh.contains(&"sockmap.1".to_string()), "{fresh:?}");
    for sub in ["inspect", "watch", "check", "serve", "load", "demo"] {
        assert!(fresh.contains(&format!("sockmap-{sub}.1")), "{fresh:?}");
    }
    assert!(
        !fresh.iter().any(|p| p.contains("generate")),
        "the hidden subcommand gets no page: {fresh:?}"
    );
    assert_eq!(
        fresh, committed,
        "man/ holds other pages than the CLI generates: {FIX}"
    );
    for name in &fresh {
        let new = std::fs::read(tmp.0.join(name)).expect("read generated page");
        let old = std::fs::read(repo().join("man").join(name)).expect("read committed page");
        if new != old {
            let new = String::from_utf8_lossy(&new);
            let old = String::from_utf8_lossy(&old);
            let first = new
                .lines()
                .zip(old.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| new.lines().count().min(old.lines().count()));
            panic!(
                "man/{name} is out of date (first difference at line {}: {:?} vs committed {:?}): {FIX}",
                first + 1,
                new.lines().nth(first).unwrap_or("<end>"),
                old.lines().nth(first).unwrap_or("<end>"),
            );
        }
    }
}

#[test]
fn top_man_page_documents_targets_json_and_exit_status() {
    let text = std::fs::read_to_string(repo().join("man/sockmap.1")).expect("man/sockmap.1");
    for needle in [
        ".SH TARGETS",
        ".SH \"JSON OUTPUT\"",
        ".SH \"EXIT STATUS\"",
        ".SH \"CHECK OUTPUT\"",
        "pid:PID",
        "inode:INODE",
        "[IPV6]:PORT",
        "sockmap\\-inspect(1)",
        "sockmap\\-check(1)",
        "somaxconn",
        "tcp_max_syn_backlog",
        "syncookies",
        "accept_queue {depth, backlog}",
        "syn_queue {depth, scope}",
        "holders[] {pid, ppid, comm, uid, user, fd, state, cmdline}",
        "waiters[] {pid, tid, how, fd, exclusive}",
        "backlog_clamped",
        "reuseport",
        "recv_q, send_q",
        "drops",
        "groups[]",
        "verdict",
        "warnings[]",
    ] {
        assert!(text.contains(needle), "man/sockmap.1 lacks {needle:?}");
    }
}

/// Where a program is on PATH, if anywhere.
fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

#[test]
fn man_pages_render() {
    let man = which("man");
    if !common::require(man.is_some(), "`man` (apt-get install man-db)") {
        return;
    }
    let Some(man) = man else { return };
    for name in pages(&repo().join("man")) {
        let path = repo().join("man").join(&name);
        let out = Std::new(&man)
            .arg("-l")
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .expect("man runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "man -l man/{name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
            assert!(
                text.contains(heading),
                "man/{name} renders without {heading}"
            );
        }
        if name == "sockmap.1" {
            for heading in ["TARGETS", "JSON OUTPUT", "EXIT STATUS"] {
                assert!(
                    text.contains(heading),
                    "man/{name} renders without {heading}"
                );
            }
        }
    }
    // groff's own warnings (bad macros, unknown escapes), when it is here.
    let groff = which("groff");
    if !common::require(groff.is_some(), "`groff` (apt-get install groff-base)") {
        return;
    }
    let Some(groff) = groff else { return };
    for name in pages(&repo().join("man")) {
        let out = Std::new(&groff)
            .args(["-k", "-man", "-ww", "-z"])
            .arg(repo().join("man").join(&name))
            .output()
            .expect("groff runs");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff warns about man/{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---- completions ----------------------------------------------------------

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = sockmap()
            .args(["generate", "completions", shell])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["sockmap", "inspect", "check", "max-accept-ratio"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    if let Some(bash) = which("bash") {
        let out = sockmap()
            .args(["generate", "completions", "bash"])
            .output()
            .expect("runs");
        let tmp = TempDir::new("completion");
        let file = tmp.0.join("sockmap.bash");
        std::fs::write(&file, &out.stdout).expect("write the script");
        let check = Std::new(bash)
            .arg("-n")
            .arg(&file)
            .output()
            .expect("bash runs");
        assert!(
            check.status.success(),
            "bash -n rejects the completion script: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// No output path may panic: with stderr (and stdout) on a full device the
/// error cannot be shown, but the exit status still says what happened.
#[test]
fn a_full_stderr_never_panics() {
    if !common::require(Path::new("/dev/full").exists(), "/dev/full") {
        return;
    }
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full")
    };
    let cases: &[(&[&str], i32)] = &[
        (&["inspect", ":0"], 2),
        (&["inspect", "--no-such-flag"], 2),
        (&["check", ":80", "--shared", "--reuseport"], 2),
        (&["serve", "--addr", "192.0.2.1", "--port", "0"], 2),
    ];
    let std_sockmap = || {
        let mut c = Std::new(env!("CARGO_BIN_EXE_sockmap"));
        c.env_remove("RUST_BACKTRACE").env("NO_COLOR", "1");
        c
    };
    for (args, code) in cases {
        let out = std_sockmap()
            .args(*args)
            .stderr(full())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(*code), "{args:?} with stderr full");
        let out = std_sockmap()
            .args(*args)
            .stderr(full())
            .stdout(full())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(*code), "{args:?} with both full");
    }
}
