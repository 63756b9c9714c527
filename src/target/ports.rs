//! Port sets of the TARGET grammar: `80`, `8000-8010`, `80,443`, `:http`.
//! A set is kept as sorted, merged, inclusive ranges, which is also what
//! the kernel's bytecode filter takes. Pure: service names are resolved
//! through the `Services` the caller hands in.

use std::fmt;

use super::services::Services;
use crate::model::Proto;

/// A non-empty set of ports (1..=65535), as sorted, disjoint, non-adjacent
/// inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    /// One port.
    pub fn single(port: u16) -> Self {
        PortSet(vec![(port, port)])
    }

    /// The set of the given ranges (each `lo <= hi`), sorted and merged.
    /// `None` for no ranges or a reversed one.
    pub fn from_ranges(mut ranges: Vec<(u16, u16)>) -> Option<Self> {
        if ranges.is_empty() || ranges.iter().any(|(lo, hi)| lo > hi) {
            return None;
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Some(PortSet(merged))
    }

    /// The ranges, sorted, disjoint and not touching.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
    }

    /// How many ports the set holds.
    pub fn len(&self) -> usize {
        self.0
            .iter()
            .map(|&(lo, hi)| usize::from(hi) - usize::from(lo) + 1)
            .sum()
    }

    /// Never true: a set holds at least one port.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every port, in order.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// The union of two sets.
    pub fn union(&self, other: &PortSet) -> PortSet {
        let all = self.0.iter().chain(&other.0).copied().collect();
        PortSet::from_ranges(all).unwrap_or_else(|| self.clone())
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// Parse a port list: items separated by ',', each a port number, a range
/// `LO-HI`, or a service name. The error is the reason only (the caller
/// adds the input).
pub(super) fn parse_ports(
    spec: &str,
    proto: Proto,
    services: &dyn Services,
) -> Result<PortSet, String> {
    if spec.is_empty() {
        return Err("missing port after ':'".into());
    }
    let mut ranges = Vec::new();
    for item in spec.split(',') {
        if item.is_empty() {
            return Err(format!("empty item in the port list '{spec}'"));
        }
        ranges.push(parse_item(item, proto, services)?);
    }
    PortSet::from_ranges(ranges).ok_or_else(|| format!("invalid port list '{spec}'"))
}

fn parse_item(item: &str, proto: Proto, services: &dyn Services) -> Result<(u16, u16), String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(item) {
        let p = number(item)?;
        return Ok((p, p));
    }
    if let Some((lo, hi)) = item.split_once('-') {
        if digits(lo) && digits(hi) {
            let (a, b) = (number(lo)?, number(hi)?);
            if a > b {
                return Err(format!(
                    "reversed port range '{item}': write the lower port first, {b}-{a}"
                ));
            }
            return Ok((a, b));
        }
    }
    if is_service_name(item) {
        let p = services.port(item, proto)?;
        if p == 0 {
            return Err(format!("service '{item}' has port 0"));
        }
        return Ok((p, p));
    }
    Err(format!(
        "invalid port '{item}': not a number, a range LO-HI or a service name"
    ))
}

fn number(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(0) => Err(format!("invalid port '{s}': ports are 1 to 65535")),
        Ok(p) if p <= 65535 => Ok(p as u16),
        _ => Err(format!("invalid port '{s}': ports are 1 to 65535")),
    }
}

/// Service names as /etc/services spells them: an ASCII letter, then
/// letters, digits and `-_.+`.
pub(super) fn is_service_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"-_.+".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_sorts_and_dedups() {
        let s = PortSet::from_ranges(vec![(443, 443), (80, 80), (81, 90), (85, 100), (80, 80)])
            .expect("valid");
        assert_eq!(s.ranges(), &[(80, 100), (443, 443)]);
        assert_eq!(s.to_string(), "80-100,443");
        assert_eq!(s.len(), 22);
        assert!(s.contains(95) && s.contains(443) && !s.contains(101));
        assert_eq!(PortSet::from_ranges(vec![(5, 4)]), None);
        assert_eq!(PortSet::from_ranges(vec![]), None);
        let full = PortSet::from_ranges(vec![(1, 65535), (65535, 65535)]).expect("valid");
        assert_eq!(full.len(), 65535);
        assert_eq!(full.to_string(), "1-65535");
    }

    #[test]
    fn union_merges() {
        let a = PortSet::single(80);
        let b = PortSet::single(81);
        assert_eq!(a.union(&b).ranges(), &[(80, 81)]);
        assert_eq!(a.union(&b).ports().collect::<Vec<_>>(), vec![80, 81]);
    }

    #[test]
    fn service_names() {
        for ok in ["http", "http-alt", "x11", "sql.net", "a+b", "z_1"] {
            assert!(is_service_name(ok), "{ok}");
        }
        for bad in ["", "1http", "-x", "ht tp", "ht:tp", "é"] {
            assert!(!is_service_name(bad), "{bad}");
        }
    }
}
