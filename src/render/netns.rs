//! How a network namespace is named in text output:
//! `netns 4026532281 (container 3f2a9c1e5b7d app-web)`. Names come from
//! other processes (ip netns names, container names) and are escaped.

use crate::model::netns::Netns;
use crate::model::report::Report;

fn esc(s: &str) -> String {
    crate::escape::terminal(s).into_owned()
}

/// `netns INODE`, then in parentheses what it is: its `ip netns` name,
/// its container (runtime when not docker, short id, name, pod).
pub fn label(n: &Netns) -> String {
    let mut what: Vec<String> = Vec::new();
    if let Some(name) = &n.name {
        what.push(format!("ip netns {}", esc(name)));
    }
    if let Some(c) = &n.container {
        let mut s = String::from("container ");
        if c.runtime != crate::model::netns::Runtime::Docker {
            s.push_str(&format!("{} ", c.runtime));
        }
        s.push_str(c.id.get(..12).unwrap_or(&c.id));
        if let Some(name) = &c.name {
            s.push(' ');
            s.push_str(&esc(name));
        }
        if let Some(pod) = &c.pod {
            s.push_str(&format!(" pod {}", esc(pod)));
        }
        what.push(s);
    }
    if what.is_empty() {
        format!("netns {}", n.inode)
    } else {
        format!("netns {} ({})", n.inode, what.join(", "))
    }
}

/// Whether more than one namespace is involved — looked into, or holding
/// the report's sockets (only then do renderers name them).
pub fn several(report: &Report) -> bool {
    let mut it = report.sockets.iter().map(|s| s.netns.inode);
    let mixed = match it.next() {
        Some(first) => it.any(|i| i != first),
        None => false,
    };
    mixed || report.namespaces.len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::netns::{Container, Runtime};

    #[test]
    fn labels() {
        let mut n = Netns {
            inode: 4026532281,
            name: None,
            container: None,
        };
        assert_eq!(label(&n), "netns 4026532281");
        n.name = Some("blue\x1b[2J".into());
        assert_eq!(label(&n), "netns 4026532281 (ip netns blue\\x1b[2J)");
        n.name = None;
        n.container = Some(Container {
            runtime: Runtime::Docker,
            id: "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a".into(),
            name: Some("app-web".into()),
            pod: None,
        });
        assert_eq!(
            label(&n),
            "netns 4026532281 (container 3f2a9c1e5b7d app-web)"
        );
        n.container = Some(Container {
            runtime: Runtime::Containerd,
            id: "abc".into(),
            name: None,
            pod: Some("0b3c6b1e-5d2f-4a8e-9c1d-2e3f4a5b6c7d".into()),
        });
        assert_eq!(
            label(&n),
            "netns 4026532281 (container containerd abc pod 0b3c6b1e-5d2f-4a8e-9c1d-2e3f4a5b6c7d)"
        );
    }
}
