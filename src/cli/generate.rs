//! `sockmap generate` (hidden, for packagers): man pages, JSON Schemas and shell
//! completions from the one clap definition (`cli::command()`). The
//! options and subcommands come from clap; the sections clap cannot know
//! (TARGETS, JSON OUTPUT, EXIT STATUS, ...) are written here as roff.
//! Output must be deterministic: a test regenerates `man/` and fails on drift.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap_mangen::roff::{bold, roman, Inline, Roff};
use clap_mangen::Man;

use crate::app::GenerateWhat;
use crate::error::{exit, Error, Result};

/// Run `generate man DIR` or `generate completions SHELL`.
pub fn run(what: &GenerateWhat, out: &mut impl Write) -> Result<i32> {
    match what {
        GenerateWhat::Man(dir) => {
            for path in write_man_pages(dir)? {
                writeln!(out, "{}", path.display()).map_err(crate::app::stdout_err)?;
            }
        }
        GenerateWhat::Schema(dir) => {
            for path in write_schemas(dir)? {
                writeln!(out, "{}", path.display()).map_err(crate::app::stdout_err)?;
            }
        }
        GenerateWhat::Completions(shell) => {
            // clap_complete panics on a failed write: render into memory
            // first so a closed pipe is an ordinary error.
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut crate::cli::command(), "sockmap", &mut buf);
            out.write_all(&buf).map_err(crate::app::stdout_err)?;
        }
    }
    out.flush().map_err(crate::app::stdout_err)?;
    Ok(exit::OK)
}

/// The JSON documents sockmap prints, by file name: the schemas come from
/// the serde types themselves, their descriptions from the doc comments.
fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    use crate::lab::message as lab;
    use schemars::schema_for;
    vec![
        ("inspect.json", schema_for!(crate::model::report::Report)),
        (
            "watch-sample.json",
            schema_for!(crate::model::watch::Sample),
        ),
        ("check.json", schema_for!(crate::model::check::CheckOutcome)),
        (
            "snapshot.json",
            schema_for!(crate::model::recording::Recording),
        ),
        ("serve-ready.json", printed::<lab::ServeReady>()),
        ("serve-report.json", printed::<lab::ServeReport>()),
        ("load-report.json", printed::<lab::LoadReport>()),
    ]
}

/// The schema of a document as sockmap prints it (schemars' serialize
/// contract): a field written as `null` when empty is required, as the
/// strict readers in `lab::message` require it. `schema_for!` describes
/// what serde would accept instead, where a missing `Option` reads as
/// `None`.
fn printed<T: schemars::JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::default()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// Write one JSON Schema per document into `dir` (created if missing);
/// returns the paths written.
pub fn write_schemas(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::os(format!("cannot create {}", dir.display()), e))?;
    let mut written = Vec::new();
    for (name, schema) in schemas() {
        let mut text = serde_json::to_vec_pretty(&schema)
            .map_err(|e| Error::os(format!("cannot encode the schema {name}"), e.into()))?;
        text.push(b'\n');
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::os(format!("cannot write {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

/// Write `sockmap.1` and one page per visible subcommand into `dir`
/// (created if missing); returns the paths written.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::os(format!("cannot create {}", dir.display()), e))?;
    let mut written = Vec::new();
    for (name, text) in man_pages() {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::os(format!("cannot write {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

/// Every man page as (file name, roff text). Pure.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![("sockmap.1".to_string(), top_page(&cmd))];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone());
        pages.push((man.get_filename(), sub_page(&man, sub)));
    }
    pages
}

/// Appends roff sections to one page. Every `to_writer` call repeats the
/// two-line apostrophe preamble; keep only the first.
struct Page(Vec<u8>);

const PREAMBLE: &[u8] = b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

impl Page {
    fn add(&mut self, render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) {
        let mut part = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = render(&mut part);
        let body = if !self.0.is_empty() && part.starts_with(PREAMBLE) {
            &part[PREAMBLE.len()..]
        } else {
            &part[..]
        };
        self.0.extend_from_slice(body);
    }

    fn roff(&mut self, r: &Roff) {
        self.add(|w| r.to_writer(w));
    }

    /// clap's own sections: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, SUBCOMMANDS.
    fn clap_sections(&mut self, man: &Man, cmd: &clap::Command) {
        self.add(|w| man.render_title(w));
        self.add(|w| man.render_name_section(w));
        self.add(|w| {
            // clap_mangen shows a repeatable positional as `[TARGET]`: add
            // the `...` that says it takes several.
            let mut synopsis = Vec::new();
            man.render_synopsis_section(&mut synopsis)?;
            let mut text = String::from_utf8_lossy(&synopsis).into_owned();
            for arg in cmd.get_positionals().filter(|a| {
                matches!(a.get_action(), clap::ArgAction::Append)
                    && a.get_num_args().is_some_and(|n| n.max_values() > 1)
            }) {
                for name in arg.get_value_names().into_iter().flatten() {
                    for close in ["]", ">"] {
                        let shown = format!("\\fI{name}\\fR{close}");
                        text = text.replace(&shown, &format!("{shown}..."));
                    }
                }
            }
            w.write_all(text.as_bytes())
        });
        self.add(|w| man.render_description_section(w));
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            self.add(|w| man.render_options_section(w));
        }
        if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
            self.add(|w| man.render_subcommands_section(w));
        }
    }
}

fn top_page(cmd: &clap::Command) -> Vec<u8> {
    let man = Man::new(cmd.clone());
    let mut page = Page(Vec::new());
    page.clap_sections(&man, cmd);
    let mut r = Roff::new();
    targets(&mut r, true);
    json_output(&mut r);
    check_output(&mut r);
    exit_status(&mut r);
    environment(&mut r);
    permissions(&mut r);
    examples(&mut r);
    see_also(&mut r, cmd, None);
    page.roff(&r);
    if cmd.get_version().is_some() {
        page.add(|w| man.render_version_section(w));
    }
    page.0
}

fn sub_page(man: &Man, sub: &clap::Command) -> Vec<u8> {
    let mut page = Page(Vec::new());
    page.clap_sections(man, sub);
    let mut r = Roff::new();
    let name = sub.get_name();
    if matches!(name, "inspect" | "watch" | "check") {
        targets(&mut r, name == "inspect");
    }
    match name {
        "inspect" => {
            columns(&mut r);
            r.control("SH", ["JSON OUTPUT"]);
            r.text([
                roman("With "),
                bold("--json"),
                roman(", one document (schema 2); its fields are listed under JSON OUTPUT in "),
                bold("sockmap"),
                roman("(1)."),
            ]);
        }
        "check" => check_output(&mut r),
        _ => {}
    }
    if matches!(name, "inspect" | "check" | "watch") {
        exit_status(&mut r);
    }
    see_also(&mut r, sub, Some(name));
    page.roff(&r);
    page.0
}

/// A `.TP` entry: a bold term, then its description.
fn item(r: &mut Roff, term: &str, text: impl Into<Vec<Inline>>) {
    r.control("TP", []);
    r.text([bold(term)]);
    r.text(text);
}

fn para(r: &mut Roff, text: &str) {
    r.control("PP", []);
    r.text([roman(text)]);
}

/// The holder table's columns, from the list that draws them.
fn columns(r: &mut Roff) {
    r.control("SH", ["COLUMNS"]);
    r.text([roman(
        "Each socket is a heading line (address, state, inode, queues) and one row per \
         holding process and fd:",
    )]);
    for c in crate::render::COLUMNS {
        item(r, c.header, [roman(c.doc)]);
    }
}

/// `optional`: the command runs without a target (inspect: every listener).
fn targets(r: &mut Roff, optional: bool) {
    r.control("SH", ["TARGETS"]);
    r.text([roman(
        "A TARGET selects sockets. Several targets add up: a socket that matches any of them is \
         selected.",
    )]);
    if optional {
        r.text([roman(
            "sockmap inspect with no target shows every listening TCP socket.",
        )]);
    }
    item(
        r,
        ":PORTS, PORTS",
        [roman(
            "Sockets on those ports (1 to 65535) on any local address: :8000 or 8000, a list \
             :80,443, a range :8000-8010, or a service name from /etc/services (:http), mixed \
             freely (:http,8000-8010).",
        )],
    );
    item(
        r,
        "ADDR:PORTS, ADDR",
        [roman(
            "Sockets bound to exactly that IPv4 address, e.g. 127.0.0.1:8000. 0.0.0.0:8000 is \
             the IPv4 wildcard listener itself, not \"any address\". Without a port \
             (127.0.0.1), every socket bound to the address.",
        )],
    );
    item(
        r,
        "[IPV6]:PORTS, IPV6",
        [roman(
            "Sockets bound to exactly that IPv6 address, e.g. [::1]:8000 or [::]:8000; the \
             brackets are required before a port. Without a port, ::1 or [::1].",
        )],
    );
    item(
        r,
        "*:PORTS",
        [roman(
            "Sockets bound to the wildcard address of either family (0.0.0.0 or ::), as the \
             table header prints them.",
        )],
    );
    item(
        r,
        "tcp:..., udp:...",
        [roman(
            "Any of the forms above for that protocol: udp:53, udp:127.0.0.1:53, tcp:8000. \
             Without a prefix, TCP; a service name is looked up for the prefix's protocol.",
        )],
    );
    item(
        r,
        "unix:PATH, unix:@NAME",
        [roman(
            "A unix socket by the path it is bound to, or by its abstract name.",
        )],
    );
    item(
        r,
        "pid:PID",
        [roman("Every socket that process holds, in any state.")],
    );
    item(
        r,
        "comm:NAME",
        [roman(
            "Every socket held by processes whose command name (comm, at most 15 bytes) is \
             NAME, e.g. comm:nginx.",
        )],
    );
    item(
        r,
        "inode:INODE",
        [roman(
            "One socket by inode: the number in socket:[INODE] that /proc/PID/fd/N points \
             to, or ino: in ss -e.",
        )],
    );
    item(
        r,
        "netns:NAME, netns:INODE",
        [roman(
            "Look in that network namespace (a name under /run/netns, or the namespace's \
             inode); alone, every listener there; with other targets, narrows them to it.",
        )],
    );
    para(
        r,
        "Host names are not resolved. An invalid target (:99999, :0, :, :8010-8000, foo, \
         1.2.3:80, [::1, pid:abc, inode:-1, unix:) is reported in one line that names the bad part, and the exit \
         status is 2.",
    );
}

/// A list of JSON fields, each a `.TP` entry, indented under its parent.
fn fields(r: &mut Roff, list: &[(&str, &str)]) {
    r.control("RS", []);
    for (name, doc) in list {
        item(r, name, [roman(*doc)]);
    }
    r.control("RE", []);
}

fn json_output(r: &mut Roff) {
    r.control("SH", ["JSON OUTPUT"]);
    r.text([
        bold("sockmap inspect --json"),
        roman(
            " prints one document. Its fields are a contract for scripts (schema 2): a field is \
             removed or changes meaning only with a new schema number. A value that is not \
             known is null.",
        ),
    ]);
    item(r, "schema", [roman("2.")]);
    item(
        r,
        "query",
        [roman(
            "What was asked, e.g. \":8000\" or \"every listening TCP socket\".",
        )],
    );
    item(
        r,
        "host",
        [roman("Host-wide settings that shape every listener:")],
    );
    fields(
        r,
        &[
            (
                "somaxconn",
                "net.core.somaxconn, the cap on every listen() backlog.",
            ),
            ("tcp_max_syn_backlog", "net.ipv4.tcp_max_syn_backlog."),
            ("syncookies", "net.ipv4.tcp_syncookies (0, 1 or 2)."),
        ],
    );
    item(r, "sockets[]", [roman("One object per socket:")]);
    fields(
        r,
        &[
            (
                "inode",
                "The socket inode, as in socket:[INODE] under /proc/PID/fd.",
            ),
            ("cookie", "The kernel's socket cookie."),
            ("proto", "\"tcp\", \"udp\" or \"unix\"."),
            (
                "sock_type",
                "\"stream\" (TCP, unix), \"dgram\" (UDP, unix) or \"seqpacket\" (unix).",
            ),
            (
                "family",
                "\"inet\" (IPv4), \"inet6\" (IPv6) or \"unix\".",
            ),
            (
                "state",
                "TCP state numbering, also for unix and UDP: \"LISTEN\", \"ESTABLISHED\", \
                 \"SYN_RECV\", \"TIME_WAIT\", ...; an unconnected UDP socket is \"CLOSE\" \
                 (text output says UNCONN, as ss does).",
            ),
            (
                "local_addr, local_port",
                "The local address and port (TCP and UDP); null for unix sockets.",
            ),
            (
                "remote_addr, remote_port",
                "The peer; null for a listener and an unconnected UDP socket.",
            ),
            (
                "path",
                "Unix sockets: the bound path, or \"@name\" for an abstract name; null for \
                 an unnamed socket. Invalid UTF-8 is replaced here; text output escapes it.",
            ),
            (
                "path_status",
                "Unix sockets bound to a path: \"bound\" (the path leads to this socket), \
                 \"unlinked\" (nothing there: new clients get ENOENT), \"replaced\" (the path \
                 now names another file) or \"unknown\" (could not be checked). The path is \
                 looked up from a holder's root directory.",
            ),
            (
                "vfs {ino, dev}",
                "Unix sockets bound to a path: the socket file's inode and device (st_dev \
                 encoding), as stat(2) would report them.",
            ),
            ("peer", "Connected unix sockets: the peer socket's inode."),
            (
                "uid",
                "The user that owns the socket (null if the kernel did not report it).",
            ),
            (
                "accept_queue {depth, backlog}",
                "TCP and unix listeners only. depth: connections waiting for accept() (sk_ack_backlog); \
                 backlog: the listen() backlog after the somaxconn clamp (sk_max_ack_backlog). \
                 The queue is full when depth exceeds backlog.",
            ),
            (
                "syn_queue {depth, scope}",
                "Listeners only, null when not measured. depth: half-open connections \
                 (request sockets in SYN_RECV) on this listener's address and port; scope: \
                 \"socket\", or \"group\" when the count covers a whole SO_REUSEPORT group \
                 (request sockets cannot be split among its members). Connections answered \
                 with syncookies are not counted.",
            ),
            (
                "recv_q, send_q",
                "Not for TCP/unix listeners. TCP: bytes not yet read by the application, and \
                 bytes not yet acknowledged by the peer. UDP: memory held by datagrams waiting \
                 to be read and being sent, in bytes (what ss shows as Recv-Q/Send-Q). Unix: \
                 bytes waiting to be read, and sent but not yet read by the peer.",
            ),
            (
                "rcvbuf",
                "TCP and UDP: sk_rcvbuf, the receive buffer limit in bytes (SO_RCVBUF \
                 doubled); a UDP socket drops datagrams when its receive queue reaches it.",
            ),
            (
                "drops",
                "sk_drops: for a TCP listener, mostly connections dropped on a full queue (the \
                 kernel counts some other failures there too); for UDP, datagrams dropped \
                 (receive buffer full, bad checksum, socket filter). Null for unix.",
            ),
            (
                "reuseport",
                "SO_REUSEPORT: true or false when read from the socket (the BPF holder scan, \
                 root), true when inferred from several TCP listeners on one address:port, else \
                 null (several UDP sockets on one address:port may also share it through \
                 SO_REUSEADDR).",
            ),
            (
                "backlog_clamped",
                "Listeners: true when the backlog equals somaxconn, so listen() may have \
                 asked for more.",
            ),
            (
                "holders[] {pid, ppid, comm, uid, user, fd, state, cmdline}",
                "Every process and file descriptor that holds the socket. A forked server \
                 shows one socket with several holders; a process that exited while it was \
                 read is left out. state: running, sleeping, disk-sleep, stopped, traced, \
                 idle (null: unreadable). comm and each cmdline argument are the exact \
                 text: a string, or an array of byte values when it is not UTF-8. A holder \
                 whose own network namespace differs from the socket's also has netns (its \
                 nsfs inode).",
            ),
            (
                "netns {inode, name, container}",
                "The network namespace the socket lives in: its nsfs inode (as lsns prints), \
                 its ip netns name or null, and the container owning it or null: {runtime \
                 (docker, containerd, cri-o, podman, kubernetes), id, name (docker, when \
                 readable), pod (the Kubernetes pod UID)}, from the cgroup of a process inside.",
            ),
            (
                "forward {via, to_addr, to_port, to_inodes, to_netns}",
                "Only for a listener held by a forwarder (docker-proxy): where it connects each \
                 client on to, the listening socket(s) found there, and their namespace.",
            ),
            (
                "waiters[] {pid, tid, how, fd, exclusive}",
                "Threads sleeping in a wait for the socket right now (a stopped or traced \
                 thread is no waiter). how: \"accept\", \"epoll\", \"poll\" or \
                 \"select\"; fd: the socket's fd, or the epoll fd; exclusive: the kernel \
                 wakes one such waiter per connection (accept: always; epoll: only with \
                 EPOLLEXCLUSIVE; poll and select: never).",
            ),
        ],
    );
    item(
        r,
        "groups[]",
        [roman(
            "The listening sockets (TCP LISTEN, UDP unconnected, unix LISTEN) on one \
             protocol and local address:port, or one unix listener, and what they mean:",
        )],
    );
    fields(
        r,
        &[
            (
                "netns",
                "The nsfs inode of the group's namespace: groups never span namespaces, so \
                 two containers on one port are two groups.",
            ),
            ("proto", "\"tcp\", \"udp\" or \"unix\"."),
            (
                "local_addr, local_port",
                "The address:port (TCP, UDP); null for unix.",
            ),
            (
                "path",
                "Unix: the listener's path or @name; a unix group is one socket.",
            ),
            (
                "kind",
                "\"single\" (one socket, at most one process), \"shared\" (one socket held by \
                 several processes, as after fork: one accept queue), or \"reuseport\" \
                 (several listening sockets, SO_REUSEPORT: one accept queue each).",
            ),
            ("inodes", "The group's sockets."),
            ("holders", "How many distinct processes hold them."),
            (
                "holders_complete",
                "false when some processes could not be read: holders is then a lower bound \
                 and the verdict says \"at least\".",
            ),
            ("verdict", "The one plain sentence the table ends with."),
        ],
    );
    item(
        r,
        "warnings[]",
        [roman(
            "What could not be seen, one object each: kind (processes_unreadable, \
             processes_partly_readable, proc_hidden, no_such_process, pid_not_visible, \
             other_netns, ipv6_unavailable, syn_queue_unmeasured, udp_unavailable, \
             unix_unavailable, waiters_unreadable, netns_not_inspected, netns_dump_failed), count, \
             pid and detail where they apply, message (a sentence) and hint (what to do). \
             Empty only when nothing was hidden.",
        )],
    );
    item(
        r,
        "scan",
        [roman(
            "How the holders were found (absent when no socket matched): method \
             (\"bpf-task\", \"bpf-task-file\" or \"proc\"), duration_ms (the holder scan), \
             load_ms (loading the BPF program, when this run loaded it), fallback_reason \
             (why BPF was not used: disabled, not-permitted, no-btf, pid-namespace, \
             load-failed, scan-failed) and detail (what failed).",
        )],
    );
}

fn check_output(r: &mut Roff) {
    r.control("SH", ["CHECK OUTPUT"]);
    r.text([
        bold("sockmap check"),
        roman(
            " prints one line per assertion, \"ok\", \"FAIL\" or \"UNKNOWN\", its name, what \
             was expected and what was found, then a summary line. When no assertion is given, \
             --listening is implied. Queue and backlog assertions fail when nothing listens. An \
             assertion whose answer depends on what could not be seen (holders in processes \
             that could not be read, a SYN queue that could not be measured) is UNKNOWN, never \
             a guessed pass or fail.",
        ),
    ]);
    r.control("PP", []);
    r.text([
        roman("With "),
        bold("--json"),
        roman(", one document (schema 2):"),
    ]);
    item(r, "schema", [roman("2.")]);
    item(r, "ok", [roman("true when every assertion holds.")]);
    item(
        r,
        "status",
        [roman(
            "\"fail\" if any assertion failed, else \"unknown\" if any could not be decided, \
             else \"ok\".",
        )],
    );
    item(
        r,
        "target",
        [roman("The target(s) checked, e.g. \":8000\".")],
    );
    item(r, "assertions[]", [roman("One object per assertion:")]);
    fields(
        r,
        &[
            (
                "name",
                "The flag without dashes: \"listening\", \"holders\", \"min_holders\", \
                 \"shared\", \"reuseport\", \"max_accept_queue\", \"max_accept_ratio\", \
                 \"max_syn_queue\", \"min_backlog\" or \"pid\".",
            ),
            ("ok", "Whether it holds."),
            ("status", "\"ok\", \"fail\" or \"unknown\"."),
            ("expected", "What the assertion asked for, e.g. \"3\"."),
            ("actual", "What was found, e.g. \"2 (pids 10, 11)\"."),
            ("detail", "The line the text output prints after the name."),
        ],
    );
    item(
        r,
        "warnings[]",
        [roman(
            "As in inspect: what could not be seen (holder counts may be short without root).",
        )],
    );
}

fn exit_status(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    item(
        r,
        "0",
        [roman(
            "Success (check: every assertion holds). Results made partial by missing \
             permissions are still 0, and carry warnings.",
        )],
    );
    item(
        r,
        "1",
        [roman(
            "inspect found nothing for the target, or a check assertion failed.",
        )],
    );
    item(
        r,
        "2",
        [roman(
            "Usage or input error: a bad target, a bad flag value, an unknown flag.",
        )],
    );
    item(
        r,
        "3",
        [roman(
            "The kernel query failed (e.g. sock_diag netlink unavailable), or another \
             operating-system error.",
        )],
    );
    item(
        r,
        "4",
        [roman(
            "check: no assertion failed, but at least one could not be decided because part \
             of the picture could not be seen (see the warnings; run as root).",
        )],
    );
}

fn environment(r: &mut Roff) {
    r.control("SH", ["ENVIRONMENT"]);
    item(
        r,
        "NO_COLOR",
        [roman(
            "When set and not empty, no colour (as --color never). Without a terminal on \
             stdout there is no colour either.",
        )],
    );
    item(
        r,
        "SOCKMAP_NO_BPF",
        [roman(
            "When set (not empty, not 0), --scan auto reads /proc instead of loading the BPF \
             holder scan.",
        )],
    );
    item(
        r,
        "SOCKMAP_BPF_LOG",
        [roman(
            "When set (not empty, not 0), print the kernel verifier's log when the BPF \
             holder scan's program is refused (as --verbose does).",
        )],
    );
}

fn permissions(r: &mut Roff) {
    r.control("SH", ["PERMISSIONS"]);
    r.text([roman(
        "Sockets and their queues come from sock_diag netlink and need no privilege. Which \
         process holds a socket comes from /proc/PID/fd, which only root (or the process's \
         own user) may read: without root, holders may be missing, and a warning says how \
         many processes could not be read. As root (CAP_BPF and CAP_PERFMON) on a kernel with \
         BTF, a BPF iterator finds the holders in the kernel instead, and reads SO_REUSEPORT \
         from each socket; it reads and changes nothing else. sock_diag sees the network \
         namespace sockmap runs in.",
    )]);
}

fn examples(r: &mut Roff) {
    r.control("SH", ["EXAMPLES"]);
    let ex: [(&str, &str); 6] = [
        (
            "sockmap inspect :8000",
            "Who holds the listener on port 8000, and its queues.",
        ),
        (
            "sockmap inspect pid:1234 --plain",
            "Every socket of process 1234, one row per holder.",
        ),
        (
            "sockmap watch :8000 --interval 500ms",
            "The queues of :8000, twice a second.",
        ),
        (
            "sockmap check :8000 --shared --max-accept-ratio 0.8",
            "Exit 0 if one socket on :8000 is shared by several processes and its accept \
             queue is at most 80% full.",
        ),
        (
            "sockmap inspect :8000 --json | jq '.sockets[].accept_queue'",
            "The accept queues, for scripts.",
        ),
        (
            "sockmap generate completions bash",
            "A bash completion script, on stdout.",
        ),
    ];
    for (cmd, what) in ex {
        item(r, cmd, [roman(what)]);
    }
}

fn see_also(r: &mut Roff, cmd: &clap::Command, this: Option<&str>) {
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<Inline> = Vec::new();
    let mut push = |page: String, section: &str| {
        if !refs.is_empty() {
            refs.push(roman(", "));
        }
        refs.push(bold(page));
        refs.push(roman(format!("({section})")));
    };
    match this {
        // A subcommand page points back at the main page.
        Some(_) => push("sockmap".into(), "1"),
        None => {
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                push(format!("sockmap-{}", sub.get_name()), "1");
            }
        }
    }
    for (page, section) in [("ss", "8"), ("lsof", "8"), ("listen", "2"), ("tcp", "7")] {
        push(page.into(), section);
    }
    r.text(refs);
}
