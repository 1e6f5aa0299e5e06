//! Where every server of the local cluster lives and how it is started, as data (no I/O): the
//! tutorial's six servers (seeds 003) mapped onto loopback addresses with the standard ports.
//!
//! - ZooKeeper node i: `<prefix>.(10+i)`, client 2181, peer 2888, election 3888.
//! - master i: `<prefix>.i:5050`; Marathon i (beside it, as the tutorial runs them): `<prefix>.i:8080`.
//! - agent j: `<prefix>.(100+j):5051`, with its own slice of the ports range so two agents never
//!   offer the same port.
//!
//! Under DIR: `logs/<name>.log`, `<name>/` as each server's work directory, `cluster.json`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::flags::{IpPrefix, UpFlags};
use crate::zookeeper::{self, ZooKeeperInstall};

pub const MASTER_PORT: u16 = 5050;
pub const AGENT_PORT: u16 = 5051;
pub const MARATHON_PORT: u16 = 8080;
/// The ports every agent would offer by default, split between the agents.
const AGENT_PORTS_FIRST: u32 = 31000;
const AGENT_PORTS_COUNT: u32 = 1001;

/// One agent's slice of the machine: what an agent would detect (seeds 003 runs one agent per
/// host) divided between the agents, so that N agents on one machine do not each offer all of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentShare {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
}

impl AgentShare {
    /// `cpus` are cut to hundredths (at least 0.01); memory and disk to whole MB.
    pub fn of_machine(cpus: f64, mem_mb: f64, disk_mb: f64, agents: u32) -> AgentShare {
        let n = f64::from(agents.max(1));
        AgentShare {
            cpus: ((cpus / n * 100.0).floor() / 100.0).max(0.01),
            mem_mb: (mem_mb / n).floor().max(0.0),
            disk_mb: (disk_mb / n).floor().max(0.0),
        }
    }

    /// The agent's `--resources` value for this share and its ports.
    fn resources_flag(&self, ports: (u32, u32)) -> String {
        let (first, last) = ports;
        format!(
            "--resources=cpus:{};mem:{};disk:{};ports:[{first}-{last}]",
            self.cpus, self.mem_mb, self.disk_mb
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    ZooKeeper,
    Master,
    Marathon,
    Agent,
}

impl Role {
    /// The order servers start in: ZooKeeper first (everything else needs it).
    pub const START_ORDER: [Role; 4] = [Role::ZooKeeper, Role::Master, Role::Agent, Role::Marathon];
    /// The order servers stop in: agents first (they kill their tasks while a master still
    /// listens), then Marathons, masters, and ZooKeeper last.
    pub const STOP_ORDER: [Role; 4] = [Role::Agent, Role::Marathon, Role::Master, Role::ZooKeeper];

    pub fn label(self) -> &'static str {
        match self {
            Role::ZooKeeper => "zookeeper",
            Role::Master => "master",
            Role::Marathon => "marathon",
            Role::Agent => "agent",
        }
    }

    /// As a person would write several of them.
    pub fn plural(self) -> &'static str {
        match self {
            Role::ZooKeeper => "ZooKeeper nodes",
            Role::Master => "masters",
            Role::Marathon => "Marathons",
            Role::Agent => "agents",
        }
    }
}

/// One server: its name (`master-2`), address, directories and command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    pub role: Role,
    /// 1-based within its role.
    pub index: u32,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub work_dir: PathBuf,
    pub log_path: PathBuf,
    /// Program first.
    pub argv: Vec<String>,
}

impl Server {
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// What a person opens: the UI for masters and Marathon, the agent's base URL, and ZooKeeper's
    /// client address (not HTTP).
    pub fn url(&self) -> String {
        match self.role {
            Role::ZooKeeper => self.address(),
            Role::Marathon => format!("http://{}/ui/", self.address()),
            Role::Master | Role::Agent => format!("http://{}/", self.address()),
        }
    }
}

/// The whole cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub dir: PathBuf,
    pub quorum: u32,
    pub servers: Vec<Server>,
    /// `ip:2181,ip:2181,...`
    pub zk_connect: String,
}

impl Layout {
    pub fn new(
        flags: &UpFlags,
        dir: &Path,
        program: &Path,
        zk: &ZooKeeperInstall,
        share: AgentShare,
    ) -> Layout {
        let prefix = flags.ip_prefix;
        let program = program.display().to_string();
        let zk_ips: Vec<Ipv4Addr> = (1..=flags.masters).map(|i| zk_ip(prefix, i)).collect();
        let zk_connect = zk_ips
            .iter()
            .map(|ip| format!("{ip}:{}", zookeeper::CLIENT_PORT))
            .collect::<Vec<_>>()
            .join(",");
        let mesos_zk = format!("zk://{zk_connect}/mesos");
        let marathon_zk = format!("zk://{zk_connect}/marathon");
        let quorum = flags.masters / 2 + 1;
        let session = &flags.zk_session_timeout;
        let logs = dir.join("logs");
        let server = |role: Role, index: u32, ip: Ipv4Addr, port: u16| {
            let name = format!("{}-{index}", role.label());
            Server {
                work_dir: dir.join(&name),
                log_path: logs.join(format!("{name}.log")),
                name,
                role,
                index,
                ip,
                port,
                argv: Vec::new(),
            }
        };

        let mut servers = Vec::new();
        for (i, ip) in (1..).zip(&zk_ips) {
            let mut s = server(Role::ZooKeeper, i, *ip, zookeeper::CLIENT_PORT);
            s.argv = zookeeper::argv(zk, &s.work_dir, &s.work_dir.join("zoo.cfg"));
            servers.push(s);
        }
        for i in 1..=flags.masters {
            let ip = prefix.ip(i as u8);
            let mut s = server(Role::Master, i, ip, MASTER_PORT);
            s.argv = vec![
                program.clone(),
                "master".into(),
                format!("--zk={mesos_zk}"),
                format!("--quorum={quorum}"),
                format!("--ip={ip}"),
                format!("--port={MASTER_PORT}"),
                format!("--hostname={ip}"),
                format!("--work_dir={}", s.work_dir.display()),
                format!("--zk_session_timeout={}", session.text),
                "--registry=replicated_log".into(),
                "--cluster=local-cluster".into(),
            ];
            servers.push(s);
        }
        for j in 1..=flags.agents {
            let ip = prefix.ip((100 + j) as u8);
            let mut s = server(Role::Agent, j, ip, AGENT_PORT);
            s.argv = vec![
                program.clone(),
                "agent".into(),
                format!("--master={mesos_zk}"),
                format!("--ip={ip}"),
                format!("--port={AGENT_PORT}"),
                format!("--hostname={ip}"),
                format!("--work_dir={}", s.work_dir.display()),
                format!("--zk_session_timeout={}", session.text),
                share.resources_flag(agent_ports(j, flags.agents)),
                // So that stopping the cluster leaves no task process behind.
                "--kill_tasks_on_stop".into(),
            ];
            servers.push(s);
        }
        if flags.marathon {
            for i in 1..=flags.masters {
                let ip = prefix.ip(i as u8);
                let mut s = server(Role::Marathon, i, ip, MARATHON_PORT);
                s.argv = vec![
                    program.clone(),
                    "marathon".into(),
                    "--master".into(),
                    mesos_zk.clone(),
                    "--zk".into(),
                    marathon_zk.clone(),
                    "--hostname".into(),
                    ip.to_string(),
                    "--http_address".into(),
                    ip.to_string(),
                    "--http_port".into(),
                    MARATHON_PORT.to_string(),
                    "--zk_session_timeout".into(),
                    session.millis.to_string(),
                ];
                servers.push(s);
            }
        }
        Layout {
            dir: dir.to_path_buf(),
            quorum,
            servers,
            zk_connect,
        }
    }

    pub fn mesos_zk_url(&self) -> String {
        format!("zk://{}/mesos", self.zk_connect)
    }

    pub fn marathon_zk_url(&self) -> String {
        format!("zk://{}/marathon", self.zk_connect)
    }

    pub fn of_role(&self, role: Role) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(move |s| s.role == role)
    }

    pub fn count(&self, role: Role) -> usize {
        self.of_role(role).count()
    }

    pub fn zk_ips(&self) -> Vec<Ipv4Addr> {
        self.of_role(Role::ZooKeeper).map(|s| s.ip).collect()
    }

    /// Every `(ip, port)` a server will listen on, with its name, for the bind check before start.
    pub fn listen_addresses(&self) -> Vec<(String, Ipv4Addr, u16)> {
        let mut out = Vec::new();
        for s in &self.servers {
            out.push((s.name.clone(), s.ip, s.port));
            if s.role == Role::ZooKeeper && self.count(Role::ZooKeeper) > 1 {
                out.push((s.name.clone(), s.ip, zookeeper::PEER_PORT));
                out.push((s.name.clone(), s.ip, zookeeper::ELECTION_PORT));
            }
        }
        out
    }
}

fn zk_ip(prefix: IpPrefix, i: u32) -> Ipv4Addr {
    prefix.ip((10 + i) as u8)
}

/// Agent `j` of `count` offers its own consecutive slice of 31000-32000.
fn agent_ports(j: u32, count: u32) -> (u32, u32) {
    let width = AGENT_PORTS_COUNT / count.max(1);
    let first = AGENT_PORTS_FIRST + (j - 1) * width;
    (first, first + width - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: UpFlags,
    }

    fn layout(args: &[&str]) -> Layout {
        let flags = Cli::try_parse_from(std::iter::once("up").chain(args.iter().copied()))
            .unwrap()
            .flags;
        let zk = ZooKeeperInstall {
            java: "/usr/bin/java".into(),
            classpath: "/zk.jar".into(),
        };
        let share = AgentShare::of_machine(2.0, 23552.0, 100_000.0, flags.agents);
        Layout::new(
            &flags,
            Path::new("/run/lc"),
            Path::new("/bin/tepui"),
            &zk,
            share,
        )
    }

    fn find<'a>(l: &'a Layout, name: &str) -> &'a Server {
        l.servers
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn the_tutorial_cluster_on_loopback_addresses() {
        let l = layout(&["--ip_prefix", "127.0.42"]);
        assert_eq!(l.servers.len(), 12);
        assert_eq!(l.quorum, 2);
        assert_eq!(
            l.zk_connect,
            "127.0.42.11:2181,127.0.42.12:2181,127.0.42.13:2181"
        );
        let m2 = find(&l, "master-2");
        assert_eq!(m2.address(), "127.0.42.2:5050");
        assert!(m2.argv.contains(&format!("--zk={}", l.mesos_zk_url())));
        assert!(m2.argv.contains(&"--quorum=2".to_string()));
        assert!(m2.argv.contains(&"--work_dir=/run/lc/master-2".to_string()));
        assert_eq!(m2.log_path, PathBuf::from("/run/lc/logs/master-2.log"));
        let a3 = find(&l, "agent-3");
        assert_eq!(a3.address(), "127.0.42.103:5051");
        assert!(a3.argv.contains(&"--kill_tasks_on_stop".to_string()));
        // Two cpus, 23 GB and 100 GB of disk split three ways; ports 31666-31998.
        assert!(a3.argv.contains(
            &"--resources=cpus:0.66;mem:7850;disk:33333;ports:[31666-31998]".to_string()
        ));
        assert!(a3.argv.contains(&"--zk_session_timeout=4secs".to_string()));
        let mar1 = find(&l, "marathon-1");
        assert_eq!(mar1.url(), "http://127.0.42.1:8080/ui/");
        assert!(mar1
            .argv
            .windows(2)
            .any(|w| w[0] == "--zk_session_timeout" && w[1] == "4000"));
        assert!(mar1
            .argv
            .windows(2)
            .any(|w| w[0] == "--zk" && w[1] == l.marathon_zk_url()));
        assert_eq!(find(&l, "zookeeper-3").address(), "127.0.42.13:2181");
    }

    #[test]
    fn one_master_without_marathon() {
        let l = layout(&["--masters", "1", "--agents", "2", "--marathon", "false"]);
        assert_eq!(l.quorum, 1);
        assert_eq!(l.count(Role::Marathon), 0);
        assert_eq!(l.count(Role::Agent), 2);
        // A single ZooKeeper node has no peer or election port to check.
        assert_eq!(l.listen_addresses().len(), 4);
    }

    #[test]
    fn a_share_is_never_zero_cpus() {
        let share = AgentShare::of_machine(1.0, 100.0, 0.0, 200);
        assert_eq!(
            share,
            AgentShare {
                cpus: 0.01,
                mem_mb: 0.0,
                disk_mb: 0.0
            }
        );
        assert_eq!(AgentShare::of_machine(8.0, 8000.0, 9000.0, 1).cpus, 8.0);
    }

    #[test]
    fn agents_offer_disjoint_ports() {
        let slices: Vec<_> = (1..=3).map(|j| agent_ports(j, 3)).collect();
        assert_eq!(slices[0], (31000, 31332));
        for pair in slices.windows(2) {
            assert!(pair[0].1 < pair[1].0, "{slices:?}");
        }
        assert!(slices[2].1 <= 32000);
    }
}
