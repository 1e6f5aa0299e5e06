//! ZooKeeper for the local cluster: the installed Debian package (`java` plus
//! `/usr/share/java/zookeeper.jar`, and `slf4j-simple.jar` for readable logs when present), one
//! node per master as in the tutorial (seeds 003), configured as `tests/python/harness/zk.py` does
//! (admin server off, every four-letter word allowed), and the `srvr` four-letter word that says
//! whether a node serves and as what.
//!
//! The jar paths are parameters of [`find_install`] so tests can point them at nothing.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
pub const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
pub const CLIENT_PORT: u16 = 2181;
pub const PEER_PORT: u16 = 2888;
pub const ELECTION_PORT: u16 = 3888;
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
/// One tick; sessions may be 2 to 120 ticks long, so 1 s to 60 s (the default 4 s fits).
const TICK_MS: u32 = 500;
const SESSION_MIN_MS: u32 = 2 * TICK_MS;
const SESSION_MAX_MS: u32 = 120 * TICK_MS;
/// A small heap: three of these share one machine with nine other servers.
const HEAP: &str = "-Xmx192m";
/// The longest a `srvr` question may take.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(1);
/// Replies longer than this are not `srvr` replies.
const FOUR_LETTER_REPLY_BYTES_MAX: usize = 64 * 1024;

const INSTALL_HINT: &str =
    "local-cluster runs the ZooKeeper of the Debian package; install it with\n\
    \n    sudo apt-get install -y zookeeper\n\n(java comes with it as a dependency)";

/// ZooKeeper is not installed the way local-cluster expects.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("ZooKeeper is not installed: {missing}.\n{INSTALL_HINT}")]
pub struct ZooKeeperMissing {
    /// What was looked for and not found.
    pub missing: String,
}

/// How to start a ZooKeeper node on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooKeeperInstall {
    pub java: PathBuf,
    pub classpath: String,
}

/// Finds `java` on `path_var` (the `PATH` value) and the jars; `slf4j_simple` is optional.
pub fn find_install(
    zookeeper_jar: &Path,
    slf4j_simple: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<ZooKeeperInstall, ZooKeeperMissing> {
    if !zookeeper_jar.is_file() {
        return Err(ZooKeeperMissing {
            missing: format!("{} does not exist", zookeeper_jar.display()),
        });
    }
    let java = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("java"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| ZooKeeperMissing {
            missing: "no `java` on PATH".to_string(),
        })?;
    let mut classpath = zookeeper_jar.display().to_string();
    if slf4j_simple.is_file() {
        classpath.push(':');
        classpath.push_str(&slf4j_simple.display().to_string());
    }
    Ok(ZooKeeperInstall { java, classpath })
}

/// `zoo.cfg` of one node; `ensemble` lists every node's address, in id order (ids from 1).
pub fn config_text(data_dir: &Path, own_ip: Ipv4Addr, ensemble: &[Ipv4Addr]) -> String {
    let mut lines = vec![
        format!("tickTime={TICK_MS}"),
        "initLimit=20".to_string(),
        "syncLimit=5".to_string(),
        format!("dataDir={}", data_dir.display()),
        format!("clientPort={CLIENT_PORT}"),
        format!("clientPortAddress={own_ip}"),
        format!("minSessionTimeout={SESSION_MIN_MS}"),
        format!("maxSessionTimeout={SESSION_MAX_MS}"),
        "admin.enableServer=false".to_string(),
        "4lw.commands.whitelist=*".to_string(),
        "autopurge.purgeInterval=1".to_string(),
        "maxClientCnxns=0".to_string(),
    ];
    for (i, ip) in ensemble.iter().enumerate() {
        lines.push(format!("server.{}={ip}:{PEER_PORT}:{ELECTION_PORT}", i + 1));
    }
    lines.join("\n") + "\n"
}

/// The JVM command line of a node whose config is `config_path`.
pub fn argv(install: &ZooKeeperInstall, data_dir: &Path, config_path: &Path) -> Vec<String> {
    vec![
        install.java.display().to_string(),
        HEAP.to_string(),
        "-XX:+UseSerialGC".to_string(),
        "-XX:TieredStopAtLevel=1".to_string(),
        "-XX:-UsePerfData".to_string(),
        "-Djava.net.preferIPv4Stack=true".to_string(),
        format!("-Dzookeeper.log.dir={}", data_dir.display()),
        "-Dorg.slf4j.simpleLogger.showDateTime=true".to_string(),
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS".to_string(),
        "-cp".to_string(),
        install.classpath.clone(),
        MAIN_CLASS.to_string(),
        config_path.display().to_string(),
    ]
}

/// Writes `myid` and `zoo.cfg` into `data_dir`; returns the config's path.
pub fn write_config(
    data_dir: &Path,
    id: u32,
    own_ip: Ipv4Addr,
    ensemble: &[Ipv4Addr],
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(data_dir.join("myid"), format!("{id}\n"))?;
    let path = data_dir.join("zoo.cfg");
    std::fs::write(&path, config_text(data_dir, own_ip, ensemble))?;
    Ok(path)
}

/// The `Mode:` of a `srvr` reply: `leader`, `follower`, `standalone`; None if absent.
pub fn mode_of(srvr_reply: &str) -> Option<String> {
    srvr_reply
        .lines()
        .find_map(|line| line.strip_prefix("Mode:"))
        .map(|mode| mode.trim().to_string())
        .filter(|mode| !mode.is_empty())
}

/// Whether a mode means the node serves clients.
pub fn serving(mode: Option<&str>) -> bool {
    matches!(mode, Some("leader" | "follower" | "standalone"))
}

/// Asks `ip:2181` the `srvr` four-letter word; None when it does not answer in time.
pub async fn mode(ip: Ipv4Addr) -> Option<String> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect((ip, CLIENT_PORT))
            .await
            .ok()?;
        stream.write_all(b"srvr").await.ok()?;
        stream.shutdown().await.ok()?;
        let mut reply = Vec::new();
        let mut limited = (&mut stream).take(FOUR_LETTER_REPLY_BYTES_MAX as u64);
        limited.read_to_end(&mut reply).await.ok()?;
        Some(String::from_utf8_lossy(&reply).into_owned())
    };
    let reply = tokio::time::timeout(FOUR_LETTER_TIMEOUT, ask)
        .await
        .ok()??;
    mode_of(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("local-cluster-zk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_jar_says_how_to_install_zookeeper() {
        let dir = scratch("nojar");
        let err = find_install(
            &dir.join("zookeeper.jar"),
            &dir.join("slf4j.jar"),
            Some(dir.as_os_str()),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("zookeeper.jar does not exist"), "{text}");
        assert!(text.contains("sudo apt-get install -y zookeeper"), "{text}");
        assert!(text.contains("java comes with it"), "{text}");
    }

    #[test]
    fn missing_java_says_how_to_install_it_too() {
        let dir = scratch("nojava");
        let jar = dir.join("zookeeper.jar");
        std::fs::write(&jar, b"").unwrap();
        let err = find_install(&jar, &dir.join("slf4j.jar"), Some(dir.as_os_str())).unwrap_err();
        assert!(err.missing.contains("java"), "{err}");
        assert!(err.to_string().contains("apt-get install -y zookeeper"));
    }

    #[test]
    fn found_install_has_both_jars_when_present() {
        let dir = scratch("found");
        let (jar, slf4j, java) = (
            dir.join("zookeeper.jar"),
            dir.join("slf4j.jar"),
            dir.join("java"),
        );
        for f in [&jar, &java] {
            std::fs::write(f, b"").unwrap();
        }
        let install = find_install(&jar, &slf4j, Some(dir.as_os_str())).unwrap();
        assert_eq!(install.java, java);
        assert_eq!(install.classpath, jar.display().to_string());
        std::fs::write(&slf4j, b"").unwrap();
        let install = find_install(&jar, &slf4j, Some(dir.as_os_str())).unwrap();
        assert_eq!(
            install.classpath,
            format!("{}:{}", jar.display(), slf4j.display())
        );
    }

    #[test]
    fn config_lists_the_ensemble_and_binds_its_own_address() {
        let ips = [
            Ipv4Addr::new(127, 0, 1, 11),
            Ipv4Addr::new(127, 0, 1, 12),
            Ipv4Addr::new(127, 0, 1, 13),
        ];
        let text = config_text(Path::new("/d/zookeeper-2"), ips[1], &ips);
        assert!(text.contains("clientPortAddress=127.0.1.12\n"), "{text}");
        assert!(text.contains("server.3=127.0.1.13:2888:3888\n"), "{text}");
        assert!(
            text.contains("admin.enableServer=false\n")
                && text.contains("4lw.commands.whitelist=*\n")
        );
        assert!(text.contains("dataDir=/d/zookeeper-2\n"));
    }

    #[test]
    fn srvr_mode_is_parsed() {
        let reply = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(mode_of(reply).as_deref(), Some("follower"));
        assert!(serving(Some("leader")) && !serving(None) && !serving(Some("observer?")));
        assert_eq!(
            mode_of("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }
}
