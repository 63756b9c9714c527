//! How the holders were found: the method, its cost, and why a faster
//! method was not used. Recorded in the snapshot (`ScanInfo`) and shown
//! in the JSON report (`ScanReport`, the `scan` object).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which holder scan to use (`--scan`, `SOCKMAP_NO_BPF`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScanChoice {
    /// The BPF iterator when it can be used, else the /proc scan.
    #[default]
    Auto,
    /// Always the /proc scan.
    Proc,
    /// The BPF iterator or an error.
    Bpf,
}

/// The holder scan a command asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOptions {
    pub choice: ScanChoice,
    /// Say how holders were found, with the verifier log of a failed load.
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScanMethod {
    /// An `iter/task` program walked every fd table in the kernel.
    BpfTask,
    /// An `iter/task_file` program, called for every open file.
    BpfTaskFile,
    /// `/proc/PID/fd/*` read for every process.
    Proc,
}

/// Why the BPF scan was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackReason {
    /// `--scan proc` or `SOCKMAP_NO_BPF=1`.
    Disabled,
    /// No CAP_BPF and CAP_PERFMON (not root).
    NotPermitted,
    /// No kernel BTF at /sys/kernel/btf/vmlinux.
    NoBtf,
    /// sockmap runs in a pid namespace other than the initial one: the
    /// iterator reports pids of the initial namespace.
    PidNamespace,
    /// The kernel refused to load or attach the program.
    LoadFailed,
    /// The loaded iterator could not be read.
    ScanFailed,
}

/// How one pass found the holders (in the snapshot: integer microseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScanInfo {
    pub method: ScanMethod,
    /// The holder scan itself, in microseconds (see `ScanReport`).
    pub duration_us: u64,
    /// Loading the BPF program, when this pass loaded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<FallbackReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The verifier's log of a failed load, only when asked for; never
    /// recorded.
    #[serde(skip)]
    #[schemars(skip)]
    pub verifier_log: Option<String>,
}

/// The report's `scan` object.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ScanReport {
    pub method: ScanMethod,
    /// The holder scan itself (iterator run and parse, or the whole /proc
    /// walk), without loading the program, in milliseconds.
    pub duration_ms: f64,
    /// Loading the BPF program, when this pass loaded it (once per process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<FallbackReason>,
    /// What failed, in words (which load step and the kernel's error),
    /// also when a faster BPF program failed and a slower one was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&ScanInfo> for ScanReport {
    fn from(s: &ScanInfo) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        ScanReport {
            method: s.method,
            duration_ms: ms(s.duration_us),
            load_ms: s.load_us.map(ms),
            fallback_reason: s.fallback_reason,
            detail: s.detail.clone(),
        }
    }
}

impl std::fmt::Display for ScanMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScanMethod::BpfTask => "bpf-task",
            ScanMethod::BpfTaskFile => "bpf-task-file",
            ScanMethod::Proc => "proc",
        })
    }
}

impl std::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FallbackReason::Disabled => "disabled",
            FallbackReason::NotPermitted => "not-permitted",
            FallbackReason::NoBtf => "no-btf",
            FallbackReason::PidNamespace => "pid-namespace",
            FallbackReason::LoadFailed => "load-failed",
            FallbackReason::ScanFailed => "scan-failed",
        })
    }
}
