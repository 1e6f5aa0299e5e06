//! A real standalone ZooKeeper for integration tests (Debian's package, as tests/python/harness/zk.py
//! uses it), started per test on 127.0.0.1 and a free port, killed on drop. A missing java or jar
//! fails the test with a clear message: these tests never skip.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
pub const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct ZkServer {
    child: Child,
    dir: PathBuf,
    pub address: SocketAddr,
}

impl ZkServer {
    pub fn start(name: &str) -> ZkServer {
        for jar in [ZK_JAR, SLF4J_SIMPLE] {
            assert!(
                std::path::Path::new(jar).exists(),
                "{jar} is missing: install Debian's zookeeper package (apt-get install zookeeper)"
            );
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("no free port")
            .port();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let dir = std::env::temp_dir().join(format!(
            "marathon-store-zk-{name}-{}-{port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create the ZooKeeper data dir");
        let cfg = dir.join("zoo.cfg");
        let config = format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout=1000\nmaxSessionTimeout=30000\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\nautopurge.purgeInterval=0\n",
            dir.display()
        );
        std::fs::write(&cfg, config).expect("cannot write zoo.cfg");
        let log = std::fs::File::create(dir.join("zk.log")).expect("cannot create zk.log");
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-XX:-UsePerfData",
                "-Djava.net.preferIPv4Stack=true",
            ])
            .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
            .args(["-cp", &format!("{ZK_JAR}:{SLF4J_SIMPLE}"), MAIN_CLASS])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run java (needed for the real ZooKeeper these tests use): {e}")
            });
        let mut server = ZkServer {
            child,
            dir,
            address,
        };
        let started = Instant::now();
        loop {
            if server.four_letter("srvr").contains("Mode: standalone") {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "ZooKeeper exited with {status}; see {}",
                    server.dir.join("zk.log").display()
                );
            }
            assert!(
                started.elapsed() < START_DEADLINE,
                "ZooKeeper did not serve within {START_DEADLINE:?}; see {}",
                server.dir.join("zk.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `zk://127.0.0.1:<port><root>`.
    pub fn url(&self, root: &str) -> election::ZkUrl {
        election::ZkUrl::parse(&format!("zk://{}{root}", self.address)).expect("valid URL")
    }

    pub fn four_letter(&self, word: &str) -> String {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.address, Duration::from_secs(1))
        else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream.write_all(word.as_bytes()).is_err() {
            return String::new();
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub const SESSION_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn connect(server: &ZkServer, root: &str) -> marathon_store::ZkConnection {
    marathon_store::connect(&server.url(root), SESSION_TIMEOUT)
        .await
        .expect("connect to the test ZooKeeper")
}

/// Waits until `check` holds on a watch's value, with a deadline (never sleeps to synchronise).
pub async fn wait_for<T: Clone>(
    rx: &mut tokio::sync::watch::Receiver<T>,
    what: &str,
    check: impl FnMut(&T) -> bool,
) -> T {
    match tokio::time::timeout(Duration::from_secs(15), rx.wait_for(check)).await {
        Ok(Ok(value)) => value.clone(),
        Ok(Err(_)) => panic!("{what}: the sender is gone"),
        Err(_) => panic!("{what}: not within 15 s"),
    }
}
