//! A crowded host for `scripts/bench`: a process group of idle processes
//! holding many fds, and one listening socket shared by a few forked
//! holders — the case where finding a socket's holders costs a
//! `readlinkat` per fd of every process.
//!
//! ```text
//! cargo run --release --example crowd -- --procs 600 --fds 60 [--holders 3]
//!     [--timeout 1800]
//! ```
//!
//! Each of the `procs` idle processes holds exactly `fds` fds: stdin,
//! stdout and stderr on /dev/null, a loopback TCP connection (both ends:
//! it connects to a private listener, accepts, and closes the listener),
//! an unbound TCP socket, a unix socketpair, pipes for about a third of
//! the rest and /dev/null files for the remainder. Then a listening socket
//! on a free 127.0.0.1 port is forked into `holders` processes (the
//! parent closes its copy, so exactly `holders` processes hold it).
//!
//! When everything is set up it prints one line to stdout and waits:
//!
//! ```text
//! crowd ready port=PORT pgid=PGID procs=N fds=M holders=a,b,c inode=INODE total_fds=F
//! ```
//!
//! Cleanup on every path: SIGINT/SIGTERM/SIGHUP, the `--timeout`, and the
//! death of the crowd's own parent (PR_SET_PDEATHSIG → SIGTERM) make it
//! kill and reap every child; every child has PR_SET_PDEATHSIG(SIGKILL),
//! so a crowd killed with SIGKILL still takes its children with it. All
//! of them share one process group (the crowd's pid), so `kill -- -PGID`
//! also works. Nothing leaves loopback.
//!
//! Before forking it checks the limits that could stop it (pid_max and
//! the tasks already running, threads-max, RLIMIT_NPROC, a pids cgroup,
//! nr_open, file-max, the ephemeral port range) and refuses with a
//! message naming the limit when a size cannot be reached. RLIMIT_NOFILE
//! is raised as needed.

use std::io::Write;
use std::process::ExitCode;

struct Args {
    procs: usize,
    fds: usize,
    holders: usize,
    timeout: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        procs: 600,
        fds: 60,
        holders: 3,
        timeout: 1800,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("invalid {name} '{v}'"))
        };
        match flag.as_str() {
            "--procs" => a.procs = num("--procs")? as usize,
            "--fds" => a.fds = num("--fds")? as usize,
            "--holders" => a.holders = num("--holders")? as usize,
            "--timeout" => a.timeout = num("--timeout")?,
            "-h" | "--help" => {
                return Err("usage: crowd --procs N --fds M [--holders K] [--timeout SECS]".into())
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if a.fds < 8 {
        return Err(format!(
            "--fds {} is too small: each process holds stdio + 5 sockets, at least 8",
            a.fds
        ));
    }
    if a.holders == 0 {
        return Err("--holders must be at least 1".into());
    }
    Ok(a)
}

fn read_num(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Tasks (threads) running now: the 4th field of /proc/loadavg, "R/T".
fn tasks_now() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/loadavg").ok()?;
    t.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

/// The pids cgroup limit and usage for this process (v1 or v2), if any.
fn pids_cgroup() -> Option<(u64, u64, String)> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        let dir = if ctrl.split(',').any(|c| c == "pids") {
            format!("/sys/fs/cgroup/pids{path}")
        } else if ctrl.is_empty() {
            format!("/sys/fs/cgroup{path}")
        } else {
            continue;
        };
        let max = std::fs::read_to_string(format!("{dir}/pids.max")).ok()?;
        let max = max.trim();
        if max == "max" {
            continue;
        }
        let max: u64 = max.parse().ok()?;
        let cur = read_num(&format!("{dir}/pids.current")).unwrap_or(0);
        return Some((max, cur, dir));
    }
    None
}

/// Refuse sizes the kernel will not give us; raise RLIMIT_NOFILE.
fn check_limits(a: &Args) -> Result<(), String> {
    let need_tasks = (a.procs + a.holders + 1) as u64;
    let margin = 200;
    if let (Some(max), Some(now)) = (read_num("/proc/sys/kernel/pid_max"), tasks_now()) {
        if now + need_tasks + margin > max {
            return Err(format!(
                "cannot reach {} processes: kernel.pid_max is {max} and {now} tasks exist",
                a.procs
            ));
        }
    }
    if let (Some(max), Some(now)) = (read_num("/proc/sys/kernel/threads-max"), tasks_now()) {
        if now + need_tasks + margin > max {
            return Err(format!(
                "cannot reach {} processes: kernel.threads-max is {max} and {now} tasks exist",
                a.procs
            ));
        }
    }
    if let Some((max, cur, dir)) = pids_cgroup() {
        if cur + need_tasks > max {
            return Err(format!(
                "cannot reach {} processes: the pids cgroup {dir} allows {max}, {cur} in use",
                a.procs
            ));
        }
    }
    // SAFETY: plain getters/setters of our own limits.
    unsafe {
        let mut rl = std::mem::zeroed::<libc::rlimit>();
        if libc::geteuid() != 0 && libc::getrlimit(libc::RLIMIT_NPROC, &mut rl) == 0 {
            let n = rl.rlim_cur;
            if n != libc::RLIM_INFINITY && need_tasks + margin > n {
                return Err(format!(
                    "cannot reach {} processes: RLIMIT_NPROC is {n} (run as root or raise ulimit -u)",
                    a.procs
                ));
            }
        }
        let want = (a.fds + 16) as libc::rlim_t;
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < want {
            if let Some(nr_open) = read_num("/proc/sys/fs/nr_open") {
                if (nr_open as libc::rlim_t) < want {
                    return Err(format!(
                        "cannot give a process {} fds: fs.nr_open is {nr_open}",
                        a.fds
                    ));
                }
            }
            rl.rlim_cur = want;
            if rl.rlim_max < want {
                rl.rlim_max = want;
            }
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(format!(
                    "cannot raise RLIMIT_NOFILE to {want}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    // file-nr: allocated, free, max. A pipe or socketpair is two files.
    if let Ok(t) = std::fs::read_to_string("/proc/sys/fs/file-nr") {
        let v: Vec<u64> = t
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [used, _, max] = v[..] {
            let need = (a.procs * a.fds + a.holders * 4) as u64;
            if used + need + 10_000 > max {
                return Err(format!(
                    "cannot open {need} more files: fs.file-max is {max}, {used} allocated"
                ));
            }
        }
    }
    // Each process keeps two ports in use: its private listener's (now
    // the accepted end's) and the connecting end's ephemeral port.
    if let Ok(t) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") {
        let v: Vec<u64> = t
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [lo, hi] = v[..] {
            let have = hi.saturating_sub(lo) + 1;
            if (2 * a.procs as u64) + 1000 > have {
                return Err(format!(
                    "cannot open {} loopback connections: net.ipv4.ip_local_port_range has {have} ports",
                    a.procs
                ));
            }
        }
    }
    Ok(())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A 127.0.0.1 socket address with `port` (host order).
fn loopback(port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    sa
}

const SA_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

/// A listening socket on 127.0.0.1:0; returns (fd, port).
unsafe fn listen_loopback(backlog: i32) -> Result<(i32, u16), i32> {
    let l = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
    if l < 0 {
        return Err(errno());
    }
    let sa = loopback(0);
    if libc::bind(l, (&sa as *const libc::sockaddr_in).cast(), SA_LEN) != 0
        || libc::listen(l, backlog) != 0
    {
        return Err(errno());
    }
    let mut got: libc::sockaddr_in = std::mem::zeroed();
    let mut len = SA_LEN;
    if libc::getsockname(l, (&mut got as *mut libc::sockaddr_in).cast(), &mut len) != 0 {
        return Err(errno());
    }
    Ok((l, u16::from_be(got.sin_port)))
}

/// Common start of every child: die with the crowd, default signal
/// handling, stdio on /dev/null, every inherited fd closed but `keep`.
unsafe fn child_start(crowd: libc::pid_t, keep: &[i32]) {
    libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
        0,
        0,
    );
    if libc::getppid() != crowd {
        libc::_exit(0); // the crowd died before prctl took effect
    }
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if null >= 0 {
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 2 {
            libc::close(null);
        }
    }
    // Close everything from 3 up except the fds in `keep`.
    let mut keep: Vec<i32> = keep.to_vec();
    keep.sort_unstable();
    let mut from = 3u32;
    for &k in &keep {
        let k = k as u32;
        if k >= from {
            if k > from {
                libc::syscall(libc::SYS_close_range, from, k - 1, 0);
            }
            from = k + 1;
        }
    }
    libc::syscall(libc::SYS_close_range, from, u32::MAX, 0);
}

unsafe fn child_ready(ready: i32, ok: bool) -> ! {
    let b: u8 = if ok { b'1' } else { b'E' };
    libc::write(ready, (&b as *const u8).cast(), 1);
    libc::close(ready);
    if !ok {
        libc::_exit(1);
    }
    loop {
        libc::pause();
    }
}

/// An idle process holding exactly `fds` fds of mixed kinds.
unsafe fn noise_child(crowd: libc::pid_t, ready: i32, fds: usize) -> ! {
    child_start(crowd, &[ready]);
    let ok = (|| -> Option<()> {
        let mut held = 3usize; // stdio
                               // A loopback TCP connection, both ends held here.
        let (l, port) = listen_loopback(1).ok()?;
        let c = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let sa = loopback(port);
        if c < 0 || libc::connect(c, (&sa as *const libc::sockaddr_in).cast(), SA_LEN) != 0 {
            return None;
        }
        let a = libc::accept(l, std::ptr::null_mut(), std::ptr::null_mut());
        if a < 0 {
            return None;
        }
        libc::close(l);
        held += 2;
        // An unbound TCP socket and a unix socketpair.
        if libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) < 0 {
            return None;
        }
        let mut sp = [0i32; 2];
        if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sp.as_mut_ptr()) != 0 {
            return None;
        }
        held += 3;
        // Pipes for about a third of the rest, /dev/null for the remainder.
        let rest = fds - held;
        let pipes = rest / 6;
        for _ in 0..pipes {
            let mut p = [0i32; 2];
            if libc::pipe(p.as_mut_ptr()) != 0 {
                return None;
            }
        }
        held += 2 * pipes;
        while held < fds {
            if libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) < 0 {
                return None;
            }
            held += 1;
        }
        Some(())
    })()
    .is_some();
    child_ready(ready, ok)
}

/// A process holding the shared listening socket `listener`.
unsafe fn holder_child(crowd: libc::pid_t, ready: i32, listener: i32) -> ! {
    child_start(crowd, &[ready, listener]);
    child_ready(ready, true)
}

/// What a forked child does.
#[derive(Clone, Copy)]
enum Role {
    /// Hold this many fds of mixed kinds.
    Noise(usize),
    /// Hold the shared listener (this fd).
    Holder(i32),
}

/// Fork one child; returns its pid. The child never returns.
unsafe fn spawn(crowd: libc::pid_t, ready: i32, role: Role) -> Result<libc::pid_t, String> {
    match libc::fork() {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => match role {
            Role::Noise(fds) => noise_child(crowd, ready, fds),
            Role::Holder(listener) => holder_child(crowd, ready, listener),
        },
        pid => Ok(pid),
    }
}

fn socket_inode(fd: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

fn kill_all(children: &[libc::pid_t]) {
    // SAFETY: signalling and reaping our own children only.
    unsafe {
        for &pid in children {
            libc::kill(pid, libc::SIGKILL);
        }
        for &pid in children {
            let mut status = 0;
            while libc::waitpid(pid, &mut status, 0) < 0 && errno() == libc::EINTR {}
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("crowd: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check_limits(&args) {
        eprintln!("crowd: {e}");
        return ExitCode::from(2);
    }
    // SAFETY: single-threaded process; the children run only libc calls
    // and never return into Rust's main.
    unsafe {
        // Our own process group, so the caller's Ctrl-C does not reach the
        // children directly and `kill -- -PGID` reaches exactly them.
        libc::setpgid(0, 0);
        // Die (cleanly, see below) with our parent.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        );
        let parent = libc::getppid();
        // Block the stop signals now; sigtimedwait collects them later and
        // the children unblock them.
        let mut stop: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut stop);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut stop, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &stop, std::ptr::null_mut());
        if parent == 1 {
            eprintln!("crowd: parent already gone");
            return ExitCode::from(1);
        }

        let me = libc::getpid();
        let mut children: Vec<libc::pid_t> = Vec::with_capacity(args.procs + args.holders);
        let mut p = [0i32; 2];
        if libc::pipe2(p.as_mut_ptr(), 0) != 0 {
            eprintln!("crowd: pipe: {}", std::io::Error::last_os_error());
            return ExitCode::from(1);
        }
        let (ready_r, ready_w) = (p[0], p[1]);
        let fds = args.fds;
        let fail = |children: &[libc::pid_t], msg: String| {
            kill_all(children);
            eprintln!("crowd: {msg}");
            ExitCode::from(1)
        };
        for _ in 0..args.procs {
            match spawn(me, ready_w, Role::Noise(fds)) {
                Ok(pid) => children.push(pid),
                Err(e) => return fail(&children, e),
            }
        }
        let (listener, port) = match listen_loopback(128) {
            Ok(x) => x,
            Err(e) => {
                return fail(
                    &children,
                    format!("listen: {}", std::io::Error::from_raw_os_error(e)),
                )
            }
        };
        let inode = socket_inode(listener).unwrap_or(0);
        let mut holders = Vec::new();
        for _ in 0..args.holders {
            match spawn(me, ready_w, Role::Holder(listener)) {
                Ok(pid) => {
                    children.push(pid);
                    holders.push(pid);
                }
                Err(e) => return fail(&children, e),
            }
        }
        libc::close(listener);
        libc::close(ready_w);
        // Wait for every child's byte ('1' ready, 'E' failed).
        let want = children.len();
        let (mut got, mut failed) = (0usize, 0usize);
        let mut buf = [0u8; 4096];
        while got < want {
            let n = libc::read(ready_r, buf.as_mut_ptr().cast(), buf.len());
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
            failed += buf[..n as usize].iter().filter(|&&b| b != b'1').count();
        }
        libc::close(ready_r);
        if got < want || failed > 0 {
            return fail(
                &children,
                format!(
                    "{} of {want} children failed to set up (fds or ports exhausted?)",
                    failed + want - got.min(want)
                ),
            );
        }
        let total_fds = args.procs * args.fds + args.holders * 4;
        let holder_list: Vec<String> = holders.iter().map(|p| p.to_string()).collect();
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "crowd ready port={port} pgid={} procs={} fds={} holders={} inode={inode} total_fds={total_fds}",
            libc::getpgrp(),
            args.procs,
            args.fds,
            holder_list.join(","),
        );
        let _ = out.flush();

        // Wait for a stop signal or the timeout, then take everyone down.
        let ts = libc::timespec {
            tv_sec: args.timeout as libc::time_t,
            tv_nsec: 0,
        };
        let sig = loop {
            let s = libc::sigtimedwait(&stop, std::ptr::null_mut(), &ts);
            if s < 0 && errno() == libc::EINTR {
                continue;
            }
            break s;
        };
        kill_all(&children);
        if sig < 0 {
            eprintln!("crowd: --timeout {}s reached, cleaned up", args.timeout);
        }
    }
    ExitCode::SUCCESS
}
