//! What could not be seen, as data: a kind, a count, and the OS's own words
//! where they help. `analyze` and `check` decide by the kind (never by the
//! English text); renderers print `message()` and `hint()`.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why part of the picture may be missing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// `/proc/PID/fd` could not be opened (EACCES): the processes' holders
    /// are unknown. `count`: processes.
    ProcessesUnreadable,
    /// `/proc/PID/fd` opened but its links could not be read (root without
    /// CAP_SYS_PTRACE). `count`: processes.
    ProcessesPartlyReadable,
    /// /proc is mounted with `hidepid=` or `subset=pid`: processes of other
    /// users are invisible rather than denied. `detail`: the mount options.
    ProcHidden,
    /// A `pid:` target names no process, and /proc hides none. `pid` is set.
    NoSuchProcess,
    /// A `pid:` target is not visible, and /proc hides other users'
    /// processes: it may exist. `pid` is set.
    PidNotVisible,
    /// A `pid:` target lives in another network namespace. `pid` is set.
    OtherNetns,
    /// The IPv6 dump failed (no IPv6 on this host). `detail`: the error.
    Ipv6Unavailable,
    /// The SYN-queue dump failed, so SYN queues are not measured.
    SynQueueUnmeasured,
    /// The UDP dump failed (no udp_diag module). `detail`: the error.
    UdpUnavailable,
    /// The unix socket dump failed (no unix_diag module). `detail`: the error.
    UnixUnavailable,
    /// Threads whose state could not be read: waiters may be missing.
    /// `count`: processes.
    WaitersUnreadable,
    /// Other network namespaces could not be entered (setns needs
    /// CAP_SYS_ADMIN): their sockets are not listed. `count`: namespaces
    /// refused; `detail`: processes whose namespace could not be read,
    /// when any (then there may be more).
    NetnsNotInspected,
    /// A namespace was entered but a dump in it failed. `detail`: which
    /// and the error.
    NetnsDumpFailed,
    /// Sockets whose sock_diag attributes could not be decoded: they are
    /// listed, without what those attributes carry (drops, receive
    /// buffer; a unix socket's name, file, peer or pending connections).
    /// `count`: sockets; `detail`: the first one and why.
    AttributesUndecoded,
}

impl WarningKind {
    /// True when holders may be missing because of it: holder counts are
    /// then a lower bound ("at least"), and a check on them may be unknown.
    pub fn hides_holders(self) -> bool {
        matches!(
            self,
            WarningKind::ProcessesUnreadable
                | WarningKind::ProcessesPartlyReadable
                | WarningKind::ProcHidden
        )
    }
}

/// One thing that could not be seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    /// How many things (processes, ...) it is about; 1 when it is one fact.
    pub count: u64,
    /// The process it is about, for per-process warnings.
    pub pid: Option<u32>,
    /// The OS's words (an errno text, mount options), where they help.
    pub detail: Option<String>,
}

impl Warning {
    pub fn new(kind: WarningKind, count: u64) -> Self {
        Warning {
            kind,
            count,
            pid: None,
            detail: None,
        }
    }

    pub fn pid(kind: WarningKind, pid: u32) -> Self {
        Warning {
            pid: Some(pid),
            ..Warning::new(kind, 1)
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// One plain sentence. `detail` is included verbatim: a text renderer
    /// escapes the whole message.
    pub fn message(&self) -> String {
        let n = self.count;
        let procs = if n == 1 { "process" } else { "processes" };
        let pid = self.pid.map_or_else(|| "?".to_string(), |p| p.to_string());
        let detail = self.detail.as_deref().unwrap_or("");
        match self.kind {
            WarningKind::ProcessesUnreadable => {
                format!("{n} {procs} could not be read (permission denied): holders may be missing")
            }
            WarningKind::ProcessesPartlyReadable => format!(
                "{n} {procs} could be listed but not read (their fd links were denied): holders may be missing"
            ),
            WarningKind::ProcHidden => format!(
                "/proc is mounted with {detail}: other users' processes are hidden, so holders may be missing"
            ),
            WarningKind::NoSuchProcess => format!("pid {pid}: no such process"),
            WarningKind::PidNotVisible => format!(
                "pid {pid} is not visible: /proc hides other users' processes, so it may exist"
            ),
            WarningKind::OtherNetns => format!(
                "pid {pid} is in another network namespace: its sockets are not visible from this one"
            ),
            WarningKind::Ipv6Unavailable => format!("IPv6 sockets not listed: {detail}"),
            WarningKind::SynQueueUnmeasured => format!("SYN queue not measured: {detail}"),
            WarningKind::UdpUnavailable => format!("UDP sockets not listed: {detail}"),
            WarningKind::UnixUnavailable => format!("unix sockets not listed: {detail}"),
            WarningKind::WaitersUnreadable => format!(
                "the threads of {n} {procs} could not be read: waiting threads may be missing"
            ),
            WarningKind::NetnsNotInspected => {
                let ns = if n == 1 { "namespace" } else { "namespaces" };
                match (n, self.detail.is_some()) {
                    (0, _) => format!(
                        "other network namespaces may exist ({detail}): their sockets would not be listed"
                    ),
                    (_, false) => {
                        format!("{n} other network {ns} not inspected: their sockets are not listed")
                    }
                    (_, true) => format!(
                        "at least {n} other network {ns} not inspected ({detail}): their sockets are not listed"
                    ),
                }
            }
            WarningKind::NetnsDumpFailed => {
                format!("a network namespace could not be listed: {detail}")
            }
            WarningKind::AttributesUndecoded => {
                let sockets = if n == 1 { "socket" } else { "sockets" };
                format!(
                    "{n} {sockets} came with attributes that could not be decoded ({detail}): drops, buffer sizes or unix details may be missing"
                )
            }
        }
    }

    /// What the user can do about it, when anything.
    pub fn hint(&self) -> Option<String> {
        match self.kind {
            WarningKind::ProcessesUnreadable | WarningKind::WaitersUnreadable => {
                Some("run as root (or as the processes' owner) to see every holder".into())
            }
            WarningKind::ProcessesPartlyReadable => Some(
                "reading another process's fds needs CAP_SYS_PTRACE: run as root with that capability"
                    .into(),
            ),
            WarningKind::ProcHidden => Some(
                "run as root, or as a member of the group named by the proc mount's gid= option"
                    .into(),
            ),
            WarningKind::NoSuchProcess => None,
            WarningKind::PidNotVisible => Some(
                "run as root, or as the process's owner, to see it".into(),
            ),
            WarningKind::OtherNetns => self.pid.map(|p| {
                format!(
                    "reading it needs root (CAP_SYS_ADMIN): run as root, with --netns all or --netns pid:{p}"
                )
            }),
            // None refused, but the namespace of some process could not be
            // read (even root may not read a more privileged process's
            // /proc/PID/ns/net); otherwise sockmap could not enter them.
            WarningKind::NetnsNotInspected if self.count == 0 => Some(
                "a process's /proc/PID/ns/net was not readable (it may be more privileged than sockmap); --netns self looks only at this one"
                    .into(),
            ),
            WarningKind::NetnsNotInspected => Some(
                "reading other network namespaces needs root (CAP_SYS_ADMIN); --netns self looks only at this one"
                    .into(),
            ),
            WarningKind::NetnsDumpFailed | WarningKind::AttributesUndecoded => None,
            WarningKind::Ipv6Unavailable | WarningKind::SynQueueUnmeasured => None,
            WarningKind::UdpUnavailable => Some("load the udp_diag kernel module".into()),
            WarningKind::UnixUnavailable => Some("load the unix_diag kernel module".into()),
        }
    }
}

/// Something that could not be seen: the data, plus a sentence and a hint
/// for people. Decide by `kind`, never by the text.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Warning")]
struct WarningJson<'a> {
    kind: WarningKind,
    /// How many things (processes, ...) it is about; 1 when it is one fact.
    count: u64,
    /// The process it is about, for per-process warnings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    /// The OS's words (an errno text, mount options), where they help.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    /// One plain sentence.
    message: String,
    /// What the user can do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

impl JsonSchema for Warning {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Warning".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        WarningJson::<'static>::json_schema(g)
    }
}

impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WarningJson {
            kind: self.kind,
            count: self.count,
            pid: self.pid,
            detail: self.detail.as_deref(),
            message: self.message(),
            hint: self.hint(),
        }
        .serialize(s)
    }
}

/// The data fields of a warning as written; `message` and `hint` are
/// derived from them, so reading ignores them.
#[derive(Deserialize)]
struct WarningIn {
    kind: WarningKind,
    count: u64,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    detail: Option<String>,
}

impl<'de> Deserialize<'de> for Warning {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WarningIn::deserialize(d)?;
        Ok(Warning {
            kind: w.kind,
            count: w.count,
            pid: w.pid,
            detail: w.detail,
        })
    }
}

/// How many processes could not be read, across the warnings that hide
/// holders; `None` when none do. (`ProcHidden` has no count: 0 there.)
pub fn unreadable_processes(warnings: &[Warning]) -> Option<u64> {
    let hiding: Vec<&Warning> = warnings.iter().filter(|w| w.kind.hides_holders()).collect();
    if hiding.is_empty() {
        return None;
    }
    Some(
        hiding
            .iter()
            .filter(|w| w.kind != WarningKind::ProcHidden)
            .map(|w| w.count)
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_kind_count_and_sentence() {
        let w = Warning::new(WarningKind::ProcessesUnreadable, 47);
        let v = serde_json::to_value(&w).expect("serializes");
        assert_eq!(v["kind"], "processes_unreadable");
        assert_eq!(v["count"], 47);
        assert!(v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("47 processes could not be read")));
        assert!(v.get("pid").is_none());
    }

    #[test]
    fn only_visibility_kinds_hide_holders() {
        assert!(WarningKind::ProcessesPartlyReadable.hides_holders());
        assert!(WarningKind::ProcHidden.hides_holders());
        assert!(!WarningKind::SynQueueUnmeasured.hides_holders());
        let ws = [
            Warning::new(WarningKind::ProcessesUnreadable, 3),
            Warning::new(WarningKind::ProcHidden, 1).detail("hidepid=2"),
            Warning::new(WarningKind::SynQueueUnmeasured, 1),
        ];
        assert_eq!(unreadable_processes(&ws), Some(3));
        assert_eq!(unreadable_processes(&ws[2..]), None);
    }
}
