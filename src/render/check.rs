//! `sockmap check` output: one line per assertion (`ok   ...` / `FAIL ...`)
//! and a summary, or the JSON result document (`schema: 1`). Writes to
//! `impl Write`; the verdicts themselves come from `analyze::check`.

use std::io::{self, Write};

use crate::analyze::check::{CheckOutcome, Status};

/// ```text
/// ok   listening: expected a listening socket, found 1 on 127.0.0.1:8000 (inode 7288)
/// FAIL holders: expected 3, found 2 (pids 10, 11)
/// check :8000: FAILED, 1 of 2 assertions failed
/// ```
pub fn write_text(out: &mut impl Write, outcome: &CheckOutcome) -> io::Result<()> {
    for a in &outcome.assertions {
        let mark = match a.status {
            Status::Ok => "ok",
            Status::Fail => "FAIL",
            Status::Unknown => "UNKNOWN",
        };
        writeln!(
            out,
            "{mark:<4} {}: {}",
            a.name,
            crate::escape::terminal(&a.detail)
        )?;
    }
    let total = outcome.assertions.len();
    let failed = outcome
        .assertions
        .iter()
        .filter(|a| a.status == Status::Fail)
        .count();
    let unknown = outcome
        .assertions
        .iter()
        .filter(|a| a.status == Status::Unknown)
        .count();
    let noun = if total == 1 {
        "assertion"
    } else {
        "assertions"
    };
    if failed == 0 && unknown > 0 {
        writeln!(
            out,
            "check {}: UNKNOWN, {unknown} of {total} {noun} could not be decided (see warnings)",
            crate::escape::terminal(&outcome.target)
        )
    } else if failed == 0 {
        let all = if total == 1 {
            "1 assertion holds".to_string()
        } else {
            format!("all {total} assertions hold")
        };
        writeln!(
            out,
            "check {}: ok, {all}",
            crate::escape::terminal(&outcome.target)
        )
    } else {
        writeln!(
            out,
            "check {}: FAILED, {failed} of {total} {noun} failed",
            crate::escape::terminal(&outcome.target)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::check::{Assertion, Status};

    fn outcome(oks: &[bool]) -> CheckOutcome {
        let assertions: Vec<Assertion> = oks
            .iter()
            .map(|&ok| Assertion {
                name: "holders",
                ok,
                status: if ok { Status::Ok } else { Status::Fail },
                expected: "3".into(),
                actual: if ok { "3" } else { "2 (pids 10, 11)" }.into(),
                detail: if ok {
                    "expected 3, found 3"
                } else {
                    "expected 3, found 2 (pids 10, 11)"
                }
                .into(),
            })
            .collect();
        CheckOutcome {
            schema: 1,
            ok: oks.iter().all(|o| *o),
            status: if oks.iter().all(|o| *o) {
                Status::Ok
            } else {
                Status::Fail
            },
            target: ":8000".into(),
            assertions,
            warnings: vec![],
        }
    }

    fn text(o: &CheckOutcome) -> String {
        let mut buf = Vec::new();
        write_text(&mut buf, o).expect("write to a Vec");
        String::from_utf8(buf).expect("utf-8")
    }

    #[test]
    fn text_lines_and_summary() {
        assert_eq!(
            text(&outcome(&[true, false])),
            "ok   holders: expected 3, found 3\n\
             FAIL holders: expected 3, found 2 (pids 10, 11)\n\
             check :8000: FAILED, 1 of 2 assertions failed\n"
        );
        assert_eq!(
            text(&outcome(&[true])),
            "ok   holders: expected 3, found 3\ncheck :8000: ok, 1 assertion holds\n"
        );
    }

    #[test]
    fn json_document() {
        let mut buf = Vec::new();
        crate::render::json::write(&mut buf, &outcome(&[false])).expect("write to a Vec");
        assert!(buf.ends_with(b"}\n"));
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "schema": 1,
                "ok": false,
                "status": "fail",
                "target": ":8000",
                "assertions": [{
                    "name": "holders",
                    "ok": false,
                    "status": "fail",
                    "expected": "3",
                    "actual": "2 (pids 10, 11)",
                    "detail": "expected 3, found 2 (pids 10, 11)"
                }],
                "warnings": []
            })
        );
    }
}
