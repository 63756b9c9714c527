//! Assertions that cannot all hold at once (`check --shared --reuseport`)
//! are a usage error, not a failed check: no socket could ever pass them.

use crate::analyze::check::Assertions;

/// Why the assertions contradict each other, naming both flags; `None`
/// when some state of the world could satisfy them all.
pub fn contradiction(a: &Assertions) -> Option<String> {
    let clash = |one: String, other: String, why: &str| {
        Some(format!(
            "contradictory assertions: {one} and {other} cannot both hold ({why})"
        ))
    };
    if a.shared && a.reuseport {
        return clash(
            "--shared".into(),
            "--reuseport".into(),
            "shared is one listening socket, reuseport several",
        );
    }
    if let (Some(n), Some(m)) = (a.holders, a.min_holders) {
        if m > n {
            return clash(
                format!("--holders {n}"),
                format!("--min-holders {m}"),
                "exactly fewer than the minimum",
            );
        }
    }
    if let Some(n) = a.holders.filter(|n| *n < 2) {
        if a.shared {
            return clash(
                format!("--holders {n}"),
                "--shared".into(),
                "a shared socket is held by at least 2 processes",
            );
        }
    }
    if let (Some(0), Some(pid)) = (a.holders, a.pid) {
        return clash(
            "--holders 0".into(),
            format!("--pid {pid}"),
            "that process would be a holder",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contradictions_name_both_flags() {
        let cases = [
            (
                Assertions { shared: true, reuseport: true, ..Default::default() },
                "contradictory assertions: --shared and --reuseport cannot both hold (shared is one listening socket, reuseport several)",
            ),
            (
                Assertions { holders: Some(1), min_holders: Some(5), ..Default::default() },
                "contradictory assertions: --holders 1 and --min-holders 5 cannot both hold (exactly fewer than the minimum)",
            ),
            (
                Assertions { holders: Some(1), shared: true, ..Default::default() },
                "contradictory assertions: --holders 1 and --shared cannot both hold (a shared socket is held by at least 2 processes)",
            ),
            (
                Assertions { holders: Some(0), pid: Some(7), ..Default::default() },
                "contradictory assertions: --holders 0 and --pid 7 cannot both hold (that process would be a holder)",
            ),
        ];
        for (a, want) in cases {
            assert_eq!(contradiction(&a).as_deref(), Some(want));
        }
    }

    #[test]
    fn compatible_assertions_pass() {
        let ok = [
            Assertions::default(),
            Assertions {
                holders: Some(3),
                min_holders: Some(3),
                shared: true,
                ..Default::default()
            },
            Assertions {
                holders: Some(2),
                shared: true,
                pid: Some(1),
                ..Default::default()
            },
            Assertions {
                reuseport: true,
                holders: Some(1),
                ..Default::default()
            },
            Assertions {
                holders: Some(0),
                listening: true,
                ..Default::default()
            },
        ];
        for a in ok {
            assert_eq!(contradiction(&a), None, "{a:?}");
        }
    }
}
