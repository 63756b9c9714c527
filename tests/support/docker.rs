//! Docker for live tests, with no registry: an image imported from a tar
//! assembled here (the sockmap binary under test, stripped of debug info,
//! the shared libraries `ldd` names, and busybox-static when installed),
//! and containers run from it. Image and containers have unique names and
//! are removed on drop; every wait is bounded. Traffic goes only to
//! loopback and to the addresses of containers a test created.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{unique, BIN};

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("120")
        .arg("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The shared libraries a binary loads, from `ldd`.
fn libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A rootfs image: `/sockmap`, its libraries at their paths, and
/// `/bin/busybox` if the host has busybox-static. Removed on drop.
pub struct Image {
    pub name: String,
    dir: PathBuf,
}

impl Image {
    pub fn build() -> Image {
        let name = format!("{}:test", unique("sockmap-img-"));
        let dir = std::env::temp_dir().join(unique("sockmap-rootfs-"));
        let img = Image { name, dir };
        std::fs::create_dir_all(&img.dir).expect("rootfs dir");
        let dest = img.dir.join("sockmap");
        let stripped = Command::new("strip")
            .args(["--strip-debug", "-o"])
            .arg(&dest)
            .arg(BIN)
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(BIN, &dest).expect("copy sockmap");
        }
        for lib in libraries(Path::new(BIN)) {
            let to = img.dir.join(lib.strip_prefix("/").expect("absolute"));
            std::fs::create_dir_all(to.parent().expect("parent")).expect("lib dir");
            std::fs::copy(&lib, &to).unwrap_or_else(|e| panic!("copy {lib:?}: {e}"));
        }
        let busybox = Path::new("/bin/busybox");
        if busybox.exists() {
            let bin = img.dir.join("bin");
            std::fs::create_dir_all(&bin).expect("bin");
            std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
            std::os::unix::fs::symlink("busybox", bin.join("sh")).expect("sh link");
        }
        // docker import reads the tar from stdin.
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&img.dir)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        let out = Command::new("timeout")
            .args(["120", "docker", "import", "-", &img.name])
            .stdin(tar.stdout.take().expect("tar stdout"))
            .output()
            .expect("docker import");
        let tar_ok = tar.wait().is_ok_and(|s| s.success());
        assert!(tar_ok, "tar of the rootfs failed");
        assert!(
            out.status.success(),
            "docker import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        img
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.name]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running container, removed (`docker rm -f`) on drop.
pub struct Container {
    pub name: String,
    /// The full id, as `docker inspect` gives it.
    pub id: String,
    /// Its main process as the host sees it.
    pub pid: u32,
    /// Its address on the docker bridge.
    pub ip: String,
}

impl Container {
    /// `docker run -d` with `run_args` (before the image) and the command;
    /// waits (bounded) until its log has a line containing `ready`.
    pub fn run(image: &Image, run_args: &[&str], cmd: &[&str], ready: &str) -> Container {
        let name = unique("sockmap-ct-");
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(run_args);
        args.push(&image.name);
        args.extend_from_slice(cmd);
        let out = docker(&args);
        // Remove it even if `run` half-failed.
        let mut c = Container {
            name,
            id: String::new(),
            pid: 0,
            ip: String::new(),
        };
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let logs = docker(&["logs", &c.name]);
            if String::from_utf8_lossy(&logs.stdout).contains(ready) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "container {} not ready in 60 s: {}{}",
                c.name,
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let info = docker_ok(&[
            "inspect",
            "-f",
            "{{.Id}} {{.State.Pid}} {{.NetworkSettings.IPAddress}}",
            &c.name,
        ]);
        let f: Vec<&str> = info.split_whitespace().collect();
        assert!(f.len() >= 2, "docker inspect: {info}");
        c.id = f[0].to_string();
        c.pid = f[1].parse().expect("pid");
        c.ip = f.get(2).copied().unwrap_or_default().to_string();
        c
    }

    /// The host side of a published port: `docker port NAME PORT/tcp`.
    pub fn host_port(&self, port: u16) -> u16 {
        let out = docker_ok(&["port", &self.name, &format!("{port}/tcp")]);
        out.lines()
            .find_map(|l| l.rsplit(':').next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("docker port: {out}"))
    }

    /// The container's processes as host pids: its main process and every
    /// descendant.
    pub fn pids(&self) -> Vec<u32> {
        let mut all = vec![self.pid];
        let mut i = 0;
        while i < all.len() {
            let p = all[i];
            if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
                for t in tasks.flatten() {
                    let children =
                        std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                    all.extend(
                        children
                            .split_whitespace()
                            .filter_map(|c| c.parse::<u32>().ok()),
                    );
                }
            }
            i += 1;
        }
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

/// Whether dockerd runs docker-proxy for published ports (the
/// userland-proxy setting; on unless /etc/docker/daemon.json says false).
pub fn userland_proxy() -> bool {
    let Ok(text) = std::fs::read_to_string("/etc/docker/daemon.json") else {
        return true;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["userland-proxy"].as_bool() != Some(false)
}
