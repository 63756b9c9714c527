//! Pure parser for `/proc/self/mountinfo`: the options of the proc mount
//! that hide processes (`hidepid=`, `subset=pid`). Takes bytes, no I/O.

/// Mount options that make other users' processes invisible on the proc
/// mount at `mount_point` (the last mount there wins, as it shadows the
/// others), joined with `,`; `None` when processes are not hidden.
pub fn proc_hiding_options(mountinfo: &[u8], mount_point: &[u8]) -> Option<String> {
    let mut found = None;
    for line in mountinfo.split(|&b| b == b'\n') {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        let (Some(point), Some(fstype), Some(super_opts)) =
            (fields.get(4), fields.get(dash + 1), fields.get(dash + 3))
        else {
            continue;
        };
        if unescape(point) != mount_point {
            continue;
        }
        if *fstype != b"proc" {
            found = None;
            continue;
        }
        let hiding: Vec<String> = super_opts
            .split(|&b| b == b',')
            .filter(|o| {
                (o.starts_with(b"hidepid=") && *o != b"hidepid=0" && *o != b"hidepid=off")
                    || *o == b"subset=pid"
            })
            .map(|o| String::from_utf8_lossy(o).into_owned())
            .collect();
        found = (!hiding.is_empty()).then(|| hiding.join(","));
    }
    found
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, b| v.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from a Debian 12 host, then with `mount -o remount,hidepid=2`.
    const PLAIN: &[u8] =
        b"22 28 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
23 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n";
    const HIDDEN: &[u8] = b"22 28 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw,hidepid=invisible,gid=4\n";

    #[test]
    fn plain_proc_hides_nothing() {
        assert_eq!(proc_hiding_options(PLAIN, b"/proc"), None);
    }

    #[test]
    fn hidepid_is_found() {
        assert_eq!(
            proc_hiding_options(HIDDEN, b"/proc").as_deref(),
            Some("hidepid=invisible")
        );
        let subset = b"90 1 0:55 / /proc rw - proc proc rw,hidepid=2,subset=pid\n";
        assert_eq!(
            proc_hiding_options(subset, b"/proc").as_deref(),
            Some("hidepid=2,subset=pid")
        );
    }

    #[test]
    fn last_mount_wins_and_other_points_are_ignored() {
        let both = [HIDDEN, PLAIN].concat();
        assert_eq!(proc_hiding_options(&both, b"/proc"), None);
        assert_eq!(proc_hiding_options(HIDDEN, b"/other"), None);
        let escaped = b"5 1 0:9 / /my\\040proc rw - proc proc rw,hidepid=1\n";
        assert_eq!(
            proc_hiding_options(escaped, b"/my proc").as_deref(),
            Some("hidepid=1")
        );
    }

    #[test]
    fn garbage_is_no_answer() {
        assert_eq!(
            proc_hiding_options(b"\xff\xfe - -\n\n- proc", b"/proc"),
            None
        );
    }
}
