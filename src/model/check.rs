//! The outcome of `sockmap check` (its JSON document): every assertion
//! with what was expected, what was found, and ok / fail / unknown. Plain
//! data; `analyze::check` fills it in, `render` prints it.

use schemars::JsonSchema;
use serde::Serialize;

use super::Warning;

/// An assertion's answer. `Unknown`: it depends on what could not be seen
/// (processes that could not be read, a queue not measured), so neither
/// pass nor fail would be honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unknown,
    Fail,
}

/// The verdict on every assertion; `ok` when all of them hold.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CheckOutcome {
    pub schema: u32,
    pub ok: bool,
    /// `fail` if any assertion failed, else `unknown` if any could not be
    /// decided, else `ok`.
    pub status: Status,
    /// What was checked (`Report::query`), e.g. ":8000".
    pub target: String,
    pub assertions: Vec<Assertion>,
    /// What could not be seen (copied from the report): holder counts may
    /// be short when processes could not be read.
    pub warnings: Vec<Warning>,
}

/// One assertion and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Assertion {
    /// The flag without dashes, snake_case: `holders`, `max_accept_queue`.
    pub name: &'static str,
    /// True only when the assertion holds (`status` is `ok`).
    pub ok: bool,
    pub status: Status,
    pub expected: String,
    pub actual: String,
    /// One line for people: "expected 3, found 2 (pids 10, 11)".
    pub detail: String,
}

impl Assertion {
    pub fn new(name: &'static str, ok: bool, expected: String, actual: String) -> Self {
        let detail = format!("expected {expected}, found {actual}");
        Assertion {
            name,
            ok,
            status: if ok { Status::Ok } else { Status::Fail },
            expected,
            actual,
            detail,
        }
    }

    /// A failure that more visibility could turn into a pass is `unknown`.
    pub fn unknown_if(mut self, cannot_tell: bool, why: &str) -> Self {
        if cannot_tell && self.status == Status::Fail {
            self.status = Status::Unknown;
            self = self.note(why);
        }
        self
    }

    /// Add a caveat to the one-line explanation.
    pub fn note(mut self, note: &str) -> Self {
        self.detail.push_str("; ");
        self.detail.push_str(note);
        self
    }
}
