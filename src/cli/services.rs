//! /etc/services for the TARGET grammar: read once, on the first service
//! name a target uses, and parsed by the pure `target::ServiceTable`.

use std::cell::OnceCell;
use std::path::PathBuf;

use crate::model::Proto;
use crate::target::{ServiceTable, Services};

/// The services(5) file, read lazily: a target list without names never
/// opens it.
pub struct EtcServices {
    path: PathBuf,
    table: OnceCell<Result<ServiceTable, String>>,
}

impl EtcServices {
    pub fn new() -> Self {
        Self::at("/etc/services")
    }

    pub fn at(path: impl Into<PathBuf>) -> Self {
        EtcServices {
            path: path.into(),
            table: OnceCell::new(),
        }
    }
}

impl Services for EtcServices {
    fn port(&self, name: &str, proto: Proto) -> Result<u16, String> {
        let table = self.table.get_or_init(|| {
            std::fs::read(&self.path)
                .map(|b| ServiceTable::parse(&b))
                .map_err(|e| format!("{}: {e}", self.path.display()))
        });
        match table {
            Ok(t) => t.port(name, proto),
            Err(e) => Err(format!(
                "cannot look up service '{name}' ({e}): give the port number"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_says_so() {
        let s = EtcServices::at("/nonexistent/services");
        let e = s.port("http", Proto::Tcp).expect_err("no file");
        assert!(
            e.starts_with("cannot look up service 'http' (/nonexistent/services: "),
            "{e}"
        );
        assert!(e.ends_with("give the port number"), "{e}");
    }
}
