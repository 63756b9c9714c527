//! Which container a process belongs to, read from its `/proc/PID/cgroup`
//! (cgroup v1 and v2 layouts of docker, containerd/CRI, CRI-O, podman and
//! kubepods), and the docker container's name from its config.v2.json.
//! Pure parsers on bytes, plus one-line readers. Never runs a container
//! CLI and never talks to a daemon: what the files say, or nothing.

use std::path::Path;

use crate::model::netns::{Container, Runtime};

/// The container named by a `/proc/PID/cgroup` file, if any. Every line
/// (`HIERARCHY:CONTROLLERS:PATH`) is tried; the first that names a
/// container wins, so a v1 file's several hierarchies agree or the
/// earliest is taken.
pub fn parse_cgroup(text: &[u8]) -> Option<Container> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            // The path is everything after the second ':' (paths may hold ':').
            let mut parts = line.splitn(3, |&b| b == b':');
            let (_, _, path) = (parts.next()?, parts.next()?, parts.next()?);
            parse_path(std::str::from_utf8(path).ok()?)
        })
        .next()
}

/// One cgroup path: the innermost component naming a container.
fn parse_path(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let pod = parts.iter().find_map(|p| pod_uid(p));
    for (i, part) in parts.iter().enumerate().rev() {
        let found = scope_id(part).or_else(|| {
            // `/docker/<id>` (cgroupfs driver), `/kubepods/<qos>/pod<uid>/<id>`.
            let parent = i.checked_sub(1).and_then(|j| parts.get(j))?;
            if !is_id(part) {
                return None;
            }
            if *parent == "docker" {
                Some((Runtime::Docker, *part))
            } else if parent.starts_with("pod") && pod.is_some() {
                Some((Runtime::Kubernetes, *part))
            } else {
                None
            }
        });
        if let Some((runtime, id)) = found {
            return Some(Container {
                runtime,
                id: id.to_string(),
                name: None,
                pod: pod.clone(),
            });
        }
    }
    None
}

/// `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// `libpod-<id>.scope`, and containerd's systemd-driver form
/// `kubepods-...slice:cri-containerd:<id>`.
fn scope_id(part: &str) -> Option<(Runtime, &str)> {
    if let Some((_, id)) = part.rsplit_once(":cri-containerd:") {
        return is_id(id).then_some((Runtime::Containerd, id));
    }
    if let Some((_, id)) = part.rsplit_once(":crio:") {
        return is_id(id).then_some((Runtime::Crio, id));
    }
    let stem = part.strip_suffix(".scope")?;
    let forms = [
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
        ("libpod-", Runtime::Podman),
    ];
    forms.iter().find_map(|(prefix, runtime)| {
        let id = stem.strip_prefix(prefix)?;
        is_id(id).then_some((*runtime, id))
    })
}

/// A container id: 64 lowercase hex digits. (`crio-conmon-<id>.scope`,
/// the monitor next to a CRI-O container, fails this and is skipped.)
fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The pod UID in `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid>.slice`
/// (systemd, with `_` for `-`).
fn pod_uid(part: &str) -> Option<String> {
    // containerd's systemd form appends `:cri-containerd:<id>` to the slice.
    let part = part.split(':').next().unwrap_or(part);
    let stem = part.strip_suffix(".slice").unwrap_or(part);
    let (_, uid) = stem.rsplit_once("pod")?;
    if !(stem.starts_with("pod") || stem.starts_with("kubepods")) {
        return None;
    }
    let uid = uid.replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    ok.then_some(uid)
}

/// The `"Name"` of a docker `config.v2.json` (`"/app-web"` → `app-web`).
pub fn parse_docker_name(json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(rename = "Name")]
        name: String,
    }
    let c: Config = serde_json::from_slice(json).ok()?;
    let name = c.name.strip_prefix('/').unwrap_or(&c.name);
    (!name.is_empty()).then(|| name.to_string())
}

/// The container of process `pid`, with its name when docker's state
/// directory is readable. `None` when the process is not in a container
/// we recognise (or has exited).
pub fn read_container(proc_root: &Path, pid: u32) -> Option<Container> {
    let text = std::fs::read(proc_root.join(format!("{pid}/cgroup"))).ok()?;
    let mut c = parse_cgroup(&text)?;
    if c.runtime == Runtime::Docker {
        // Only when readable (root); a config this large is not a config.
        let path = Path::new("/var/lib/docker/containers")
            .join(&c.id)
            .join("config.v2.json");
        let small = std::fs::metadata(&path).is_ok_and(|m| m.len() < 4 << 20);
        if small {
            c.name = std::fs::read(&path)
                .ok()
                .and_then(|j| parse_docker_name(&j));
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a";
    const ID2: &str = "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";

    fn parse(text: &str) -> Option<Container> {
        parse_cgroup(text.as_bytes())
    }

    /// Docker 20.10, cgroupfs driver, cgroup v1 (this project's dev
    /// machine, Debian 12): recorded from a running container's
    /// /proc/PID/cgroup. The first line (net_cls at the root) names none.
    #[test]
    fn docker_cgroup_v1_cgroupfs() {
        let text = "\
10:net_cls:/
9:name=systemd:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
8:pids:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
7:blkio:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
6:freezer:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
5:devices:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
4:memory:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
3:cpuset:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
2:cpuacct:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
1:cpu:/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
0::/docker/a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff
";
        let c = parse(text).unwrap();
        assert_eq!(c.runtime, Runtime::Docker);
        assert_eq!(
            c.id,
            "a6497de8fdc2560d4ba52dc386dd4b016c537dbe43adb1d1888004098258c1ff"
        );
        assert_eq!((c.name, c.pod), (None, None));
    }

    /// Docker, systemd driver, cgroup v2 (Debian 12 / Ubuntu 22.04 default).
    #[test]
    fn docker_cgroup_v2_systemd() {
        let c = parse(&format!("0::/system.slice/docker-{ID}.scope\n")).unwrap();
        assert_eq!((c.runtime, c.id.as_str()), (Runtime::Docker, ID));
    }

    /// Docker in docker: the innermost container is the process's own.
    #[test]
    fn nested_docker_takes_innermost() {
        let c = parse(&format!("0::/docker/{ID}/docker/{ID2}\n")).unwrap();
        assert_eq!(c.id, ID2);
    }

    /// Kubernetes with containerd, systemd driver, cgroup v2.
    #[test]
    fn containerd_kubepods_v2() {
        let text = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/\
             kubepods-burstable-pod0b3c6b1e_5d2f_4a8e_9c1d_2e3f4a5b6c7d.slice/cri-containerd-{ID}.scope\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.runtime, Runtime::Containerd);
        assert_eq!(c.id, ID);
        assert_eq!(
            c.pod.as_deref(),
            Some("0b3c6b1e-5d2f-4a8e-9c1d-2e3f4a5b6c7d")
        );
    }

    /// containerd's own systemd-driver spelling (`slice:cri-containerd:id`).
    #[test]
    fn containerd_colon_form() {
        let text = format!(
            "0::/system.slice/containerd.service/\
             kubepods-besteffort-pod0b3c6b1e_5d2f_4a8e_9c1d_2e3f4a5b6c7d.slice:cri-containerd:{ID}\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!((c.runtime, c.id.as_str()), (Runtime::Containerd, ID));
        assert!(c.pod.is_some());
    }

    /// Kubernetes, cgroupfs driver, cgroup v1: runtime not in the path.
    #[test]
    fn kubepods_v1_cgroupfs() {
        let text = format!(
            "11:memory:/kubepods/besteffort/pod0b3c6b1e-5d2f-4a8e-9c1d-2e3f4a5b6c7d/{ID}\n\
             1:name=systemd:/kubepods/besteffort/pod0b3c6b1e-5d2f-4a8e-9c1d-2e3f4a5b6c7d/{ID}\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.runtime, Runtime::Kubernetes);
        assert_eq!(c.id, ID);
        assert_eq!(
            c.pod.as_deref(),
            Some("0b3c6b1e-5d2f-4a8e-9c1d-2e3f4a5b6c7d")
        );
    }

    /// CRI-O: the container, not its conmon monitor.
    #[test]
    fn crio_and_not_conmon() {
        let c = parse(&format!(
            "0::/kubepods.slice/kubepods-pod0b3c6b1e_5d2f_4a8e_9c1d_2e3f4a5b6c7d.slice/crio-{ID}.scope\n"
        ))
        .unwrap();
        assert_eq!((c.runtime, c.id.as_str()), (Runtime::Crio, ID));
        assert_eq!(
            parse(&format!("0::/machine.slice/crio-conmon-{ID}.scope\n")),
            None
        );
    }

    #[test]
    fn podman() {
        let c = parse(&format!("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n")).unwrap();
        assert_eq!((c.runtime, c.id.as_str()), (Runtime::Podman, ID));
    }

    /// Host processes: systemd services, a login scope, the root, junk.
    #[test]
    fn not_containers() {
        for text in [
            "0::/\n",
            "0::/system.slice/ssh.service\n",
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/editor.scope\n",
            "4:memory:/process_api/e4d069ede8f3fb8014438781abfab654\n0::/\n",
            "0::/system.slice/docker.service\n",
            "0::/docker/not-an-id\n",
            &format!("0::/system.slice/docker-{}.scope\n", &ID[..63]),
            &format!("0::/system.slice/docker-{}.scope\n", ID.to_uppercase()),
            "",
            "garbage",
            "\u{0}\u{ff}::",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        assert_eq!(parse_cgroup(b"0::/docker/\xff\xfe"), None);
    }

    #[test]
    fn docker_config_name() {
        let j = br#"{"ID":"3f2a","Name":"/app-web","State":{"Running":true}}"#;
        assert_eq!(parse_docker_name(j).as_deref(), Some("app-web"));
        assert_eq!(parse_docker_name(br#"{"Name":"/"}"#), None);
        assert_eq!(parse_docker_name(b"{"), None);
        assert_eq!(parse_docker_name(br#"{"ID":"x"}"#), None);
    }
}
