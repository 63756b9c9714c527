//! The `check --json` outcome, as the tests read it (see json.rs for how
//! fields are read).

use serde::Deserialize;

use super::Warning;

/// `sockmap check --json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOutcome {
    pub schema: u32,
    pub ok: bool,
    pub status: Status,
    pub target: String,
    pub assertions: Vec<Assertion>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    pub name: String,
    pub ok: bool,
    pub status: Status,
    pub expected: String,
    pub actual: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unknown,
    Fail,
}
