//! The etcd side of the replog bench: finds (or, with `--install`, apt-installs) the binary, starts
//! three members on loopback tied to the bench's life (parent-death signal, `Drop` guard), waits
//! until they agree on a leader, and reports their CPU time.

use super::drivers::process_cpu;
use super::ReplogArgs;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener as StdTcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polling period of the members' status while waiting for a leader.
const POLL: Duration = Duration::from_millis(50);

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

const INSTALL_HINT: &str = "install it with `apt-get install -y etcd-server etcd-client` (as root), or run `tepui-bench replog --install` as root, or pass --etcd PATH";

pub(super) fn find_etcd(args: &ReplogArgs) -> Result<PathBuf> {
    if let Some(p) = &args.etcd {
        if !p.is_file() {
            bail!("no etcd binary at {}", p.display());
        }
        return Ok(p.clone());
    }
    if let Some(p) = on_path("etcd") {
        return Ok(p);
    }
    if !args.install {
        bail!("etcd is not installed; {INSTALL_HINT}");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("etcd is not installed and --install needs root; {INSTALL_HINT}");
    }
    println!("  etcd is missing: apt-get install -y etcd-server etcd-client");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "etcd-server", "etcd-client"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
    };
    let mut ok = install().map(|s| s.success()).unwrap_or(false);
    if !ok {
        println!("  apt-get install failed; running apt-get update first");
        let _ = Command::new("apt-get")
            .arg("update")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        ok = install()
            .map(|s| s.success())
            .context("cannot run apt-get")?;
    }
    if !ok {
        bail!("`apt-get install -y etcd-server etcd-client` failed");
    }
    on_path("etcd").context("apt-get installed etcd-server but no `etcd` binary is on PATH")
}

pub(super) fn etcd_version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| {
        l.strip_prefix("etcd Version:")
            .map(|v| format!("etcd {}", v.trim()))
    })
}

pub(super) struct EtcdMember {
    pub(super) name: String,
    child: Option<Child>,
    pid: u32,
    pub(super) client_url: String,
    log: PathBuf,
}

/// Three etcd processes; stopped (SIGTERM, then SIGKILL) on drop.
pub(super) struct EtcdCluster {
    pub(super) members: Vec<EtcdMember>,
}

fn json_u64(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl EtcdCluster {
    /// Spawns the members (from the bench's main thread: see `run_main`).
    pub(super) fn start(binary: &Path, dir: &Path) -> Result<EtcdCluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Six distinct free ports (held open until all are chosen).
        let mut held = Vec::new();
        let mut ports = Vec::new();
        while ports.len() < 6 {
            let l = StdTcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
                .context("cannot bind 127.0.0.1:0")?;
            let p = l.local_addr()?.port();
            if !ports.contains(&p) {
                ports.push(p);
                held.push(l);
            }
        }
        drop(held);
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let initial: Vec<String> = (0..3).map(|i| format!("e{}={}", i + 1, peer(i))).collect();
        let initial = initial.join(",");
        let token = format!("tepui-bench-{}", std::process::id());
        let mut cluster = EtcdCluster {
            members: Vec::new(),
        };
        for i in 0..3 {
            let name = format!("e{}", i + 1);
            let client_url = format!("http://127.0.0.1:{}", ports[2 * i]);
            let log = dir.join(format!("{name}.log"));
            let out =
                File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
            let err = out.try_clone()?;
            let mut cmd = Command::new(binary);
            cmd.arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(dir.join(&name))
                .arg("--listen-client-urls")
                .arg(&client_url)
                .arg("--advertise-client-urls")
                .arg(&client_url)
                .arg("--listen-peer-urls")
                .arg(peer(i))
                .arg("--initial-advertise-peer-urls")
                .arg(peer(i))
                .arg("--initial-cluster")
                .arg(&initial)
                .arg("--initial-cluster-token")
                .arg(&token)
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--logger")
                .arg("zap")
                .arg("--log-outputs")
                .arg("stderr")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .process_group(0);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("ETCD_") {
                    cmd.env_remove(k);
                }
            }
            if std::env::consts::ARCH == "aarch64" {
                cmd.env("ETCD_UNSUPPORTED_ARCH", "arm64");
            }
            // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no parent memory. If
            // the bench dies without its guard (SIGKILL), the kernel kills the member.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            let pid = child.id();
            cluster.members.push(EtcdMember {
                name,
                child: Some(child),
                pid,
                client_url,
                log,
            });
        }
        Ok(cluster)
    }

    pub(super) fn check_alive(&mut self) -> Result<()> {
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "etcd member {} exited ({status}); last lines of {}:\n{}",
                        m.name,
                        m.log.display(),
                        crate::devproc::log_tail(&m.log, 20)
                    );
                }
            }
        }
        Ok(())
    }

    /// Waits until every member names the same leader; returns its index.
    pub(super) async fn wait_leader(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<usize> {
        let until = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        loop {
            self.check_alive()?;
            let mut views = Vec::new();
            for m in &self.members {
                let url = format!("{}/v3/maintenance/status", m.client_url);
                let answer = async {
                    let r = client.post(&url).body("{}").send().await?;
                    let status = r.status();
                    let v: serde_json::Value = r.json().await?;
                    anyhow::Ok((status, v))
                }
                .await;
                match answer {
                    Ok((status, v)) if status.is_success() => {
                        let member = json_u64(v.get("header").and_then(|h| h.get("member_id")));
                        let leader = json_u64(v.get("leader"));
                        views.push((member, leader));
                    }
                    Ok((status, v)) => last = format!("{url}: {status} {v}"),
                    Err(e) => last = format!("{url}: {e:#}"),
                }
            }
            if views.len() == self.members.len() {
                let leader = views[0].1.filter(|l| *l != 0);
                if let Some(leader) = leader.filter(|l| views.iter().all(|v| v.1 == Some(*l))) {
                    if let Some(index) = views.iter().position(|v| v.0 == Some(leader)) {
                        return Ok(index);
                    }
                }
                last = format!("members report (member, leader) = {views:?}");
            }
            if Instant::now() >= until {
                bail!("etcd had no leader within {timeout:?}; last: {last}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// CPU time of all members so far.
    pub(super) fn cpu(&self) -> Option<Duration> {
        self.members.iter().map(|m| process_cpu(m.pid)).sum()
    }

    pub(super) fn describe(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "etcd log {}:\n{}",
                    m.log.display(),
                    crate::devproc::log_tail(&m.log, 5)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        let signal = |pid: u32, sig| {
            // SAFETY: kill only signals our own child, whose pid is still ours (not yet reaped).
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
        };
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                if matches!(child.try_wait(), Ok(None)) {
                    signal(m.pid, libc::SIGTERM);
                }
            }
        }
        // The data is thrown away, so a short grace: an etcd leader whose followers already left
        // spends seconds trying to hand its leadership over before it exits.
        let until = Instant::now() + Duration::from_secs(3);
        for m in &mut self.members {
            let Some(mut child) = m.child.take() else {
                continue;
            };
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= until => {
                        eprintln!("tepui-bench replog: etcd member {} still running 3 s after SIGTERM (a leader first tries to hand over leadership); killed, its data is discarded anyway", m.name);
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}
