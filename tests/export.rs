//! Live tests of `sockmap export` on loopback: the metrics equal what `ss`
//! shows and pass `promtool check metrics`; a real Prometheus server
//! scrapes them; bad requests, a burst of 10,000 scrapes, clients that
//! never read or leave mid-response leave the exporter serving with its
//! fd count back where it was.
//!
//! Every process is started in its own process group and killed on every
//! exit path; every wait is bounded; nothing asserts on timing. Needs
//! `ss` (iproute2), `promtool` and `prometheus` (Debian's `prometheus`):
//! with `CI` set a missing tool fails the test, else it skips loudly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{accept_queue_depth, kill_group, wait_exited, wait_until, ServeProc};

const LIMIT: Duration = Duration::from_secs(60);

/// True if `tool` runs; otherwise fail under CI, skip loudly elsewhere.
fn need(tool: &str, package: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is not installed (Debian package {package}); CI must install it"
        );
        eprintln!("SKIPPED: {tool} not installed (Debian package {package})");
    }
    ok
}

/// A process the test owns: own process group, killed with it on drop.
struct Owned(Child);

impl Owned {
    fn spawn(cmd: &mut Command) -> Owned {
        cmd.stdin(Stdio::null()).process_group(0);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Owned(cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")))
    }

    /// SIGTERM the group, wait (bounded), then SIGKILL whatever is left.
    fn stop(mut self) {
        // SAFETY: our unreaped child's process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGTERM) };
        wait_exited(self.0.id(), Duration::from_secs(20));
        kill_group(&self.0);
        let _ = self.0.wait();
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            kill_group(&self.0);
            let _ = self.0.wait();
        }
    }
}

/// `sockmap export --listen 127.0.0.1:0 --timeout 1s ARGS`, ready.
struct Exporter {
    proc: Owned,
    addr: SocketAddr,
}

impl Exporter {
    fn start(args: &[&str]) -> Exporter {
        let mut cmd = Command::new(common::BIN);
        cmd.args(["export", "--listen", "127.0.0.1:0", "--timeout", "1s"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut proc = Owned::spawn(&mut cmd);
        let out = proc.0.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(LIMIT)
            .expect("export printed no ready line");
        let addr = line
            .trim()
            .strip_prefix("sockmap export: serving http://")
            .and_then(|s| s.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .parse()
            .expect("address in the ready line");
        Exporter { proc, addr }
    }

    fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("exporter's fd dir")
            .count()
    }

    fn get(&self, path: &str, accept: Option<&str>) -> Http {
        let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
        request(
            self.addr,
            format!("GET {path} HTTP/1.1\r\nHost: test\r\n{accept}\r\n").as_bytes(),
        )
    }
}

#[derive(Debug)]
struct Http {
    status: u16,
    head: String,
    body: String,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Send `raw`, read the whole answer (the server closes after one).
fn request(addr: SocketAddr, raw: &[u8]) -> Http {
    let mut s = TcpStream::connect(addr).expect("connect to the exporter");
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.set_write_timeout(Some(LIMIT)).unwrap();
    s.write_all(raw).expect("send the request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read the answer");
    parse_http(&buf)
}

fn parse_http(buf: &[u8]) -> Http {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete HTTP head in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Http {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The value of `name{...local_port="port"...}` in an exposition.
fn sample(text: &str, name: &str, port: u16) -> Option<f64> {
    let want = format!("local_port=\"{port}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&want))
        .map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .next()
        .flatten()
}

/// Recv-Q and Send-Q of the listener on 127.0.0.1:`port`, as `ss` shows them.
fn ss_listener(port: u16) -> (u64, u64) {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("run ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("ss shows no listener on {port}"))
        .split_whitespace()
        .collect();
    (f[1].parse().unwrap(), f[2].parse().unwrap())
}

/// A stalled `serve --backlog 20` with 5 connections waiting in its queue.
fn stalled_with_five() -> (ServeProc, Vec<TcpStream>) {
    let serve = ServeProc::start(&["--stall", "--backlog", "20", "--workers", "1"]);
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", serve.port)).expect("connect"))
        .collect();
    assert!(
        wait_until(LIMIT, || accept_queue_depth(serve.port) == 5),
        "the accept queue never reached 5"
    );
    (serve, clients)
}

#[test]
fn metrics_equal_ss_and_pass_promtool() {
    if !need("ss", "iproute2") || !need("promtool", "prometheus") {
        return;
    }
    let (serve, _clients) = stalled_with_five();
    let exp = Exporter::start(&[]);
    let r = exp.get("/metrics", None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(r.body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics rejected the exposition: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let (recv_q, send_q) = ss_listener(serve.port);
    assert_eq!((recv_q, send_q), (5, 20), "ss disagrees with the setup");
    let depth = sample(&r.body, "sockmap_accept_queue_depth", serve.port);
    let backlog = sample(&r.body, "sockmap_accept_queue_backlog", serve.port);
    assert_eq!(depth, Some(recv_q as f64), "{}", r.body);
    assert_eq!(backlog, Some(send_q as f64));
    assert_eq!(
        sample(&r.body, "sockmap_socket_holders", serve.port),
        Some(1.0)
    );
    let info = r
        .body
        .lines()
        .find(|l| {
            l.starts_with("sockmap_socket_info{")
                && l.contains(&format!("local_port=\"{}\"", serve.port))
        })
        .expect("an info series for the listener");
    let inode = common::listening_inodes(serve.port)[0];
    assert!(info.contains(&format!("inode=\"{inode}\"")), "{info}");
    assert!(info.contains("comm=\"sockmap\""), "{info}");

    // The same scrape in OpenMetrics, on request.
    let om = exp.get("/metrics", Some("application/openmetrics-text"));
    assert_eq!(
        om.header("Content-Type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(om.body.contains("# TYPE sockmap_socket_drops counter\n"));
    assert_eq!(
        sample(&om.body, "sockmap_accept_queue_depth", serve.port),
        Some(5.0)
    );
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!("sockmap-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free right now (Prometheus cannot report a port 0 back).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn prometheus_query(port: u16, promql: &str) -> Option<serde_json::Value> {
    let mut q = String::new();
    for b in promql.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            q.push(b as char);
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET /api/v1/query?query={q} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let r = parse_http(&buf);
    (r.status == 200).then(|| serde_json::from_str(&r.body).ok())?
}

fn start_prometheus(dir: &Path, config: &Path) -> (Owned, u16) {
    // Another process may take the free port before Prometheus binds it:
    // try a few.
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap());
        let p = Owned::spawn(&mut cmd);
        let up = wait_until(LIMIT, || {
            !common::pid_alive(p.0.id()) || prometheus_query(port, "1").is_some()
        });
        if up && common::pid_alive(p.0.id()) {
            return (p, port);
        }
        p.stop();
    }
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    panic!("prometheus did not start; its log:\n{log}");
}

#[test]
fn real_prometheus_scrapes_the_exporter() {
    if !need("prometheus", "prometheus") {
        return;
    }
    let (serve, _clients) = stalled_with_five();
    let exp = Exporter::start(&[&format!(":{}", serve.port)]);
    let dir = TempDir::new("prometheus");
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: sockmap\n    static_configs:\n      - targets: ['{}']\n",
            exp.addr
        ),
    )
    .unwrap();
    let (prom, port) = start_prometheus(&dir.0, &config);
    let query = format!(
        "sockmap_accept_queue_depth{{local_port=\"{}\"}}",
        serve.port
    );
    let mut last = None;
    let found = wait_until(LIMIT, || {
        last = prometheus_query(port, &query);
        last.as_ref().is_some_and(|v| {
            v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        })
    });
    assert!(
        found,
        "Prometheus never stored the series; last answer {last:?}"
    );
    let v = last.unwrap();
    let result = &v["data"]["result"][0];
    assert_eq!(result["value"][1], "5", "{v}");
    assert_eq!(result["metric"]["job"], "sockmap");
    assert_eq!(result["metric"]["proto"], "tcp");
    // The counter arrived as a counter: rate() over it is defined.
    let up = prometheus_query(port, "up{job=\"sockmap\"}").expect("query up");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    prom.stop();
    let data = dir.0.join("data");
    drop(dir);
    assert!(!data.exists(), "Prometheus' data dir was not removed");
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s
}

#[test]
fn bad_requests_and_a_burst_leave_it_serving_with_flat_fds() {
    let (serve, _clients) = stalled_with_five();
    let exp = Exporter::start(&[&format!(":{}", serve.port)]);
    assert_eq!(exp.get("/metrics", None).status, 200);
    let base = exp.fds();

    for (raw, want) in [
        (
            &b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"[..],
            405,
        ),
        (b"DELETE / HTTP/1.1\r\n\r\n", 405),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"GET /metrics/../etc HTTP/1.1\r\n\r\n", 404),
        (b"HELLO\r\n\r\n", 400),
        (b"GET /metrics HTTP/9.9\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    ] {
        let r = request(exp.addr, raw);
        assert_eq!(
            r.status,
            want,
            "{:?} -> {r:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let r = exp.get("/", None);
    assert_eq!((r.status, r.body.contains("/metrics")), (200, true));
    let r = request(exp.addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    let head = request(exp.addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    // Headers without end: too large, then cut off.
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(request(exp.addr, huge.as_bytes()).status, 431);
    // Nothing sent: the exporter answers 408 after its 1 s timeout.
    let mut idle = connect(exp.addr);
    let mut buf = Vec::new();
    idle.read_to_end(&mut buf).unwrap();
    assert_eq!(parse_http(&buf).status, 408);
    // Gone mid-response: read a little, then reset the connection.
    for _ in 0..20 {
        let mut s = connect(exp.addr);
        s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut some = [0u8; 16];
        let _ = s.read(&mut some);
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on our own socket with a valid linger struct.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as u32,
            );
        }
    }

    // 10,000 scrapes from 32 threads, each connection one scrape.
    let addr = exp.addr;
    let threads: Vec<_> = (0..32)
        .map(|t| {
            std::thread::spawn(move || {
                let mut counts = [0u32; 2];
                let n = 10_000 / 32 + usize::from(t < 10_000 % 32);
                for _ in 0..n {
                    let r = request(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
                    match r.status {
                        200 => {
                            assert!(r.body.contains("sockmap_accept_queue_depth{"));
                            counts[0] += 1
                        }
                        503 => counts[1] += 1,
                        s => panic!("unexpected status {s}"),
                    }
                }
                counts
            })
        })
        .collect();
    let (mut ok, mut busy) = (0, 0);
    for t in threads {
        let [a, b] = t.join().expect("a burst thread failed");
        ok += a;
        busy += b;
    }
    assert_eq!(ok + busy, 10_000);
    assert!(ok > 0);
    eprintln!("burst: {ok} answered, {busy} told busy (503)");

    let r = exp.get("/metrics", None);
    assert_eq!(
        sample(&r.body, "sockmap_accept_queue_depth", serve.port),
        Some(5.0)
    );
    assert!(
        wait_until(Duration::from_secs(30), || exp.fds() <= base),
        "exporter fds: {} before, {} after",
        base,
        exp.fds()
    );
}

/// Listeners enough to make one exposition larger than the socket buffers
/// between the exporter and a client that never reads.
fn many_listeners(n: usize) -> Vec<TcpListener> {
    // SAFETY: raising our own soft fd limit to the hard one.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a listener"))
        .collect()
}

#[test]
fn a_client_that_never_reads_is_cut_off() {
    let listeners = many_listeners(3000);
    let first = listeners[0].local_addr().unwrap().port();
    let exp = Exporter::start(&[]);
    let full = exp.get("/metrics", None);
    let size = full.body.len();
    let base = exp.fds();
    // More never-readers than the exporter has workers, receive buffers small.
    let stuck: Vec<TcpStream> = (0..6)
        .map(|_| {
            let s = connect(exp.addr);
            let small: libc::c_int = 4096;
            // SAFETY: setsockopt on our own socket with a valid int.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&s),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &small as *const _ as *const libc::c_void,
                    4,
                );
            }
            (&s).write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            s
        })
        .collect();
    // Meanwhile others are served.
    for _ in 0..3 {
        let r = exp.get("/metrics", None);
        assert_eq!(r.status, 200);
        assert!(sample(&r.body, "sockmap_accept_queue_depth", first).is_some());
    }
    // The exporter gives up on them (1 s timeout) and closes: fds flat
    // while the clients are still connected.
    assert!(
        wait_until(Duration::from_secs(30), || exp.fds() <= base),
        "exporter fds: {base} before, {} with never-reading clients",
        exp.fds()
    );
    // What they can read now is cut short: the server stopped writing
    // and reset the connection.
    for mut s in stuck {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(
            buf.len() < size,
            "a never-reading client got the whole {size}-byte answer ({} bytes)",
            buf.len()
        );
    }
    assert_eq!(exp.get("/metrics", None).status, 200);
    drop(listeners);
}

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path)
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    if !need("promtool", "prometheus") {
        return;
    }
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(contrib("prometheus"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn systemd_unit_verifies() {
    if !need("systemd-analyze", "systemd") {
        return;
    }
    // verify wants ExecStart to exist: point it at the binary under test.
    let dir = TempDir::new("unit");
    let unit = std::fs::read_to_string(contrib("systemd/sockmap-export.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/sockmap export"));
    let file = dir.0.join("sockmap-export.service");
    std::fs::write(&file, unit.replace("/usr/local/bin/sockmap", common::BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&file)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown keys and bad values, but names the file.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("sockmap-export.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// A listener on 127.0.0.1:0 with `backlog`, never accepting, closed on exec.
fn listener(backlog: i32) -> TcpListener {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    rustix::net::bind(&fd, &addr).unwrap();
    rustix::net::listen(&fd, backlog).unwrap();
    TcpListener::from(fd)
}

#[test]
fn watch_overview_puts_the_filling_listener_first() {
    let stalled = listener(20);
    let idle = [listener(20), listener(20)];
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    let (p_stalled, p_idle) = (port(&stalled), [port(&idle[0]), port(&idle[1])]);
    let mut waiting = vec![TcpStream::connect(("127.0.0.1", p_stalled)).unwrap()];

    let mut cmd = Command::new(common::BIN);
    cmd.args(["watch", "--json", "--interval", "100ms", "--count", "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut watch = Owned::spawn(&mut cmd);
    let lines = BufReader::new(watch.0.stdout.take().unwrap()).lines();
    let mut samples = Vec::new();
    for line in lines {
        let line = line.expect("read watch's output");
        let v = common::json::sample(&line);
        // One more waiting connection per sample: the queue fills.
        if waiting.len() < 10 {
            waiting.push(TcpStream::connect(("127.0.0.1", p_stalled)).unwrap());
        }
        samples.push(v);
    }
    assert!(
        wait_exited(watch.0.id(), LIMIT),
        "watch did not stop after --count"
    );
    assert_eq!(samples.len(), 12);

    let mut depths = Vec::new();
    for s in &samples {
        let socks = &s.sockets;
        let at = |p: u16| {
            socks
                .iter()
                .position(|x| x.local_port == Some(p))
                .unwrap_or_else(|| panic!("port {p} missing from {s:?}"))
        };
        let (i_stalled, i_idle) = (at(p_stalled), [at(p_idle[0]), at(p_idle[1])]);
        assert!(
            i_idle.iter().all(|&i| i_stalled < i),
            "the filling listener is not ranked above the idle ones: {s:?}"
        );
        for i in i_idle {
            assert_eq!(socks[i].accept_queue.map(|q| q.depth), Some(0));
            if s.seq != 1 {
                assert_eq!(socks[i].drops_delta, Some(0), "{s:?}");
            }
        }
        assert_eq!(socks[i_stalled].holders, 1);
        depths.push(
            socks[i_stalled]
                .accept_queue
                .map(|q| q.depth)
                .expect("an accept queue"),
        );
    }
    assert!(
        depths.windows(2).all(|w| w[0] <= w[1]) && depths.last() > depths.first(),
        "the stalled listener's depth did not grow: {depths:?}"
    );
    watch.stop();
}
