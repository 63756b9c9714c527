//! Pure parsers for flag values: durations ('500ms', '2s') and byte sizes
//! ('512KiB'). Hand-written because they are a few lines each and the
//! crates for them (humantime, bytesize) accept forms we don't want to
//! promise; errors quote the bad value.

use std::time::Duration;

/// '500ms', '1s', '2.5s', '1m', or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 500ms, 1s, 2.5s"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        _ => {
            return Err(format!(
                "invalid duration '{s}': unknown unit '{unit}' (use ms, s or m)"
            ))
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("invalid duration '{s}': must be more than 0"));
    }
    if secs > 86_400.0 {
        return Err(format!("invalid duration '{s}': at most one day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// '4096', '64k', '64KiB', '1MiB', '1M', '1GiB' (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: u64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected e.g. 4096, 64KiB, 1MiB"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size '{s}': unknown unit '{unit}' (use KiB, MiB or GiB)"
            ))
        }
    };
    let bytes = value
        .checked_mul(mult)
        .ok_or_else(|| format!("invalid size '{s}': too large"))?;
    if bytes == 0 {
        return Err(format!("invalid size '{s}': must be at least 1 byte"));
    }
    if bytes > 1 << 30 {
        return Err(format!("invalid size '{s}': at most 1GiB per round"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        for bad in ["0", "0ms", "-1s", "abc", "5h", "", "1e9"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["0", "0KiB", "-1", "x", "1TiB", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
