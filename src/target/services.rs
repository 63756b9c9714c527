//! Service names (`:http`) for the TARGET grammar: the `Services` lookup the
//! parser takes, and a pure parser of the services(5) format on bytes. The
//! caller reads /etc/services; nothing here does I/O.

use std::collections::HashMap;

use crate::model::Proto;

/// Where the parser looks service names up.
pub trait Services {
    /// The port of service `name` for `proto`, or why there is none (one
    /// line, naming `name`).
    fn port(&self, name: &str, proto: Proto) -> Result<u16, String>;
}

/// No service table: every name is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoServices;

impl Services for NoServices {
    fn port(&self, name: &str, _proto: Proto) -> Result<u16, String> {
        Err(format!(
            "unknown service '{name}': no service table here, give the port number"
        ))
    }
}

/// A parsed services(5) table: `name port/proto [aliases...] [# comment]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceTable {
    by_name: HashMap<(String, Proto), u16>,
}

impl ServiceTable {
    /// Parse the bytes of a services(5) file. Lines that do not parse
    /// (bad port, unknown protocol such as `ddp`, invalid UTF-8) are
    /// skipped; the first entry for a (name, proto) wins, as in glibc.
    pub fn parse(bytes: &[u8]) -> Self {
        let mut by_name = HashMap::new();
        for line in bytes.split(|&b| b == b'\n') {
            let line = match line.iter().position(|&b| b == b'#') {
                Some(i) => &line[..i],
                None => line,
            };
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let mut words = line.split_ascii_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let proto = match proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                by_name.entry((n.to_string(), proto)).or_insert(port);
            }
        }
        ServiceTable { by_name }
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl Services for ServiceTable {
    fn port(&self, name: &str, proto: Proto) -> Result<u16, String> {
        if let Some(&p) = self.by_name.get(&(name.to_string(), proto)) {
            return Ok(p);
        }
        let other = match proto {
            Proto::Tcp => Proto::Udp,
            _ => Proto::Tcp,
        };
        if self.by_name.contains_key(&(name.to_string(), other)) {
            return Err(format!(
                "service '{name}' is {other} only in /etc/services, not {proto}"
            ));
        }
        Err(format!("unknown service '{name}': not in /etc/services"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"\
# Network services, Internet style
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
domain\t\t53/tcp\t\t\t\t# Domain Name Server
domain\t\t53/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
https\t\t443/tcp
http-alt\t8080/tcp\twebcache
http\t\t8888/tcp
#ghost\t\t9/tcp
bad\t\t99999/tcp
noproto\t\t7
atalk\t\t202/ddp
latin1\xff\t\t5/tcp
   \t
";

    #[test]
    fn names_aliases_and_protocols() {
        let t = ServiceTable::parse(SAMPLE);
        assert_eq!(t.port("http", Proto::Tcp), Ok(80)); // first entry wins over 8888
        assert_eq!(t.port("www", Proto::Tcp), Ok(80)); // alias
        assert_eq!(t.port("webcache", Proto::Tcp), Ok(8080));
        assert_eq!(t.port("domain", Proto::Udp), Ok(53));
        assert_eq!(t.port("tcpmux", Proto::Tcp), Ok(1));
        // tcpmux, domain×2, http, www, https, http-alt, webcache
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn skipped_lines_and_errors() {
        let t = ServiceTable::parse(SAMPLE);
        for gone in ["ghost", "bad", "noproto", "atalk"] {
            let e = t.port(gone, Proto::Tcp).expect_err(gone);
            assert!(
                e.contains(&format!("'{gone}'")) && e.contains("not in"),
                "{e}"
            );
        }
        let e = t.port("https", Proto::Udp).expect_err("tcp only");
        assert_eq!(e, "service 'https' is tcp only in /etc/services, not udp");
        assert!(ServiceTable::parse(b"").is_empty());
        let e = NoServices.port("http", Proto::Tcp).expect_err("none");
        assert!(e.contains("'http'"), "{e}");
    }
}
