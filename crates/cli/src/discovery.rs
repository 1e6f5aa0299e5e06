//! Finding the leading master and Marathon.
//!
//! `--master zk://hosts/path`: the masters' group in ZooKeeper, Mesos' layout (mesos-ha.md 2.2):
//! members are `json.info_<seq>` children holding MasterInfo JSON, the lowest sequence leads;
//! the `election` crate's rules parse and decode them, the others are the standbys.
//! `--master host:port`: the master's `/redirect` answers 307 with the leader's address.
//!
//! Marathon: `--marathon`, else (with zk://) its leader latch `zk://hosts/marathon/leader-curator`,
//! whose lowest-sequence participant holds the leader's HTTP `host:port` (marathon_store's
//! `MarathonElection`), else `http://<master host>:8080`.
//!
//! Reads only: a client never creates znodes, and every ZooKeeper or HTTP step is bounded in time.

use crate::http::{status_error, transport_error, Http};
use crate::{CliError, GlobalArgs};
use election::rules::{decode_leader, parse_member, MASTER_LABEL};
use election::ZkUrl;
use proto::MasterInfo;
use std::time::Duration;
use zookeeper_client as zk;

/// Time allowed to open a ZooKeeper session (the whole discovery stays under 5 s when nothing answers).
const ZK_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// The session timeout asked for; the session lives only as long as one command.
const ZK_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the reads after connecting.
const ZK_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a master's `/redirect` answer: a master that accepts but stays silent ends
/// the command within it.
const REDIRECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The port of a master given without one.
const MASTER_PORT_DEFAULT: u16 = 5050;
/// Marathon's port when only the master's host is known.
const MARATHON_PORT_DEFAULT: u16 = 8080;
/// Marathon's znode root beside the masters' (`zk://hosts/marathon`, Marathon's default `--zk`).
const MARATHON_ZK_PATH: &str = "/marathon";

/// Where the masters are, from `--master`.
#[derive(Debug, Clone, PartialEq)]
pub enum MasterAddress {
    Zk(ZkUrl),
    /// `host:port` of any master.
    Direct(String),
}

/// The masters as found.
#[derive(Debug, Clone)]
pub struct Masters {
    /// The leader's `host:port`.
    pub leader: String,
    /// The other masters registered in ZooKeeper (`None` without zk://: nobody lists them).
    pub standbys: Option<Vec<MasterInfo>>,
}

impl Masters {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.leader)
    }
}

/// Parses `--master` (the value is named in errors).
pub fn parse_master(value: &str) -> Result<MasterAddress, CliError> {
    let value = value.trim();
    if election::is_zk(value) {
        return ZkUrl::parse(value)
            .map(MasterAddress::Zk)
            .map_err(|e| CliError::Usage(format!("--master: {e}")));
    }
    parse_host_port(value, MASTER_PORT_DEFAULT)
        .map(MasterAddress::Direct)
        .map_err(|e| CliError::Usage(format!("--master: {e}")))
}

/// `host[:port]` or `http://host[:port][/...]` as `host:port`.
fn parse_host_port(value: &str, port_default: u16) -> Result<String, String> {
    if value.starts_with("https://") {
        return Err(format!(
            "'{value}': https is not supported; use http:// or host:port"
        ));
    }
    let rest = value.strip_prefix("http://").unwrap_or(value);
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains("://") {
        return Err(format!(
            "'{value}' is not host:port, http://host:port or zk://hosts/path"
        ));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            Ok(authority.to_string())
        }
        Some(_) => Err(format!(
            "'{value}': the port must be a number from 1 to 65535"
        )),
        None => Ok(format!("{authority}:{port_default}")),
    }
}

/// `--marathon` as a base URL (`http://host:port`, no trailing slash).
pub fn parse_marathon(value: &str) -> Result<String, CliError> {
    parse_host_port(value.trim(), MARATHON_PORT_DEFAULT)
        .map(|host_port| format!("http://{host_port}"))
        .map_err(|e| CliError::Usage(format!("--marathon: {e}")))
}

/// Finds the leading master.
pub async fn find_masters(http: &Http, address: &MasterAddress) -> Result<Masters, CliError> {
    match address {
        MasterAddress::Zk(url) => masters_in_zookeeper(url).await,
        MasterAddress::Direct(host_port) => leader_by_redirect(http, host_port).await,
    }
}

async fn leader_by_redirect(http: &Http, host_port: &str) -> Result<Masters, CliError> {
    let url = format!("http://{host_port}/redirect");
    let response = http
        .no_redirect()
        .get(&url)
        .timeout(REDIRECT_TIMEOUT)
        .send()
        .await
        .map_err(|e| transport_error(&url, &e))?;
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let leader = leader_from_location(location).ok_or_else(|| CliError::BadAnswer {
            url: url.clone(),
            reason: format!("redirect to '{location}' names no host:port"),
        })?;
        return Ok(Masters {
            leader,
            standbys: None,
        });
    }
    let body = response.text().await.unwrap_or_default();
    Err(match status_error("GET", &url, status, &body) {
        // A master that is not the leader's process (old versions) or something else on the port.
        CliError::NotFound(m) => CliError::BadAnswer {
            url,
            reason: format!("no /redirect endpoint ({m}); is this a Mesos master?"),
        },
        other => other,
    })
}

/// The `host:port` of a `/redirect` Location: `//host:port`, `http://host:port[/...]`.
pub fn leader_from_location(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))
        .or_else(|| location.strip_prefix("//"))?;
    let authority = rest.split('/').next()?;
    authority
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        .map(|_| authority.to_string())
}

async fn masters_in_zookeeper(url: &ZkUrl) -> Result<Masters, CliError> {
    let members = read_children(url, &url.path).await?;
    let mut masters: Vec<(u64, MasterInfo)> = Vec::new();
    let mut problems = Vec::new();
    for (name, data) in members {
        let Some(member) = parse_member(&name) else {
            continue;
        };
        if member.label.as_deref() != Some(MASTER_LABEL) {
            continue;
        }
        match decode_leader(&member, &data) {
            Ok(leader) => match leader.info {
                Some(info) => masters.push((member.sequence, info)),
                None => problems.push(format!("{name} holds no MasterInfo")),
            },
            Err(e) => problems.push(e.to_string()),
        }
    }
    masters.sort_by_key(|(sequence, _)| *sequence);
    let mut infos = masters.into_iter().map(|(_, info)| info);
    let Some(leader) = infos.next() else {
        let mut reason = format!("no master is registered under {}", url.path);
        if !problems.is_empty() {
            reason.push_str(&format!(" ({})", problems.join("; ")));
        }
        return Err(CliError::NoLeader {
            address: url.to_string(),
            reason,
        });
    };
    Ok(Masters {
        leader: leader.endpoint(),
        standbys: Some(infos.collect()),
    })
}

/// Finds Marathon's base URL (`http://host:port`).
pub async fn find_marathon(
    global: &GlobalArgs,
    master: &MasterAddress,
) -> Result<String, CliError> {
    if let Some(value) = &global.marathon {
        return parse_marathon(value);
    }
    match master {
        MasterAddress::Zk(url) => {
            let marathon = ZkUrl {
                path: MARATHON_ZK_PATH.to_string(),
                ..url.clone()
            };
            let dir = marathon_store::Layout::new(&marathon.path).leader_dir();
            let children = read_children(&marathon, &dir).await?;
            let names: Vec<String> = children.iter().map(|(name, _)| name.clone()).collect();
            let leader = marathon_store::election::leader_of(&names)
                .and_then(|name| children.iter().find(|(n, _)| n == name))
                .map(|(_, data)| String::from_utf8_lossy(data).trim().to_string());
            match leader {
                Some(host_port) if !host_port.is_empty() => {
                    parse_marathon(&host_port).map_err(|_| CliError::BadAnswer {
                        url: format!(
                            "{marathon}{}",
                            dir.strip_prefix(MARATHON_ZK_PATH).unwrap_or("")
                        ),
                        reason: format!(
                            "the Marathon leader's node holds '{host_port}', not host:port"
                        ),
                    })
                }
                _ => Err(CliError::NoLeader {
                    address: marathon.to_string(),
                    reason: format!(
                        "no Marathon instance is registered under {dir} (give --marathon)"
                    ),
                }),
            }
        }
        MasterAddress::Direct(host_port) => {
            let host = host_port
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(host_port);
            Ok(format!("http://{host}:{MARATHON_PORT_DEFAULT}"))
        }
    }
}

/// The children of `dir` with their data (children that vanish while reading are skipped; a
/// missing `dir` has none). One short session, closed when this returns.
async fn read_children(url: &ZkUrl, dir: &str) -> Result<Vec<(String, Vec<u8>)>, CliError> {
    let unreachable = |reason: String| CliError::Unreachable {
        address: url.to_string(),
        reason,
    };
    let mut connector = zk::Client::connector()
        .with_session_timeout(ZK_SESSION_TIMEOUT)
        .with_connection_timeout(ZK_CONNECT_TIMEOUT);
    if let Some((user, password)) = &url.credentials {
        connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
    }
    let client = tokio::time::timeout(ZK_CONNECT_TIMEOUT, connector.connect(&url.servers))
        .await
        .map_err(|_| {
            unreachable(format!(
                "no ZooKeeper server answered within {} s",
                ZK_CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| unreachable(format!("ZooKeeper: {e}")))?;
    let read = async {
        let names = match client.list_children(dir).await {
            Ok(names) => names,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(unreachable(format!("listing {dir}: {e}"))),
        };
        let mut children = Vec::new();
        for name in names {
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            match client.get_data(&path).await {
                Ok((data, _)) => children.push((name, data)),
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(unreachable(format!("reading {path}: {e}"))),
            }
        }
        Ok(children)
    };
    tokio::time::timeout(ZK_READ_TIMEOUT, read)
        .await
        .map_err(|_| {
            unreachable(format!(
                "ZooKeeper did not answer within {} s",
                ZK_READ_TIMEOUT.as_secs()
            ))
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_addresses_parse_or_name_the_flag() {
        assert_eq!(
            parse_master("10.0.0.1:5050").unwrap(),
            MasterAddress::Direct("10.0.0.1:5050".into())
        );
        assert_eq!(
            parse_master("http://m1:5051/").unwrap(),
            MasterAddress::Direct("m1:5051".into())
        );
        assert_eq!(
            parse_master("m1").unwrap(),
            MasterAddress::Direct("m1:5050".into())
        );
        match parse_master("zk://z1:2181,z2:2181/mesos").unwrap() {
            MasterAddress::Zk(url) => assert_eq!(url.path, "/mesos"),
            other => panic!("{other:?}"),
        }
        for bad in [
            "zk://nohostport/mesos",
            "m1:notaport",
            "https://m1:5050",
            ":5050",
            "",
            "m1:0",
        ] {
            let e = parse_master(bad).unwrap_err();
            assert!(e.to_string().starts_with("--master:"), "{bad}: {e}");
            assert_eq!(e.exit_code(), crate::EXIT_USAGE);
        }
    }

    #[test]
    fn marathon_urls_get_a_scheme_and_port() {
        assert_eq!(parse_marathon("http://h:8080/").unwrap(), "http://h:8080");
        assert_eq!(parse_marathon("h").unwrap(), "http://h:8080");
        assert!(parse_marathon("h:x")
            .unwrap_err()
            .to_string()
            .starts_with("--marathon:"));
    }

    #[test]
    fn redirect_locations_name_the_leader() {
        assert_eq!(
            leader_from_location("//10.0.0.2:5050").as_deref(),
            Some("10.0.0.2:5050")
        );
        assert_eq!(
            leader_from_location("http://m2:5050/state").as_deref(),
            Some("m2:5050")
        );
        assert_eq!(leader_from_location("/state"), None);
        assert_eq!(leader_from_location("//m2"), None);
    }

    #[tokio::test]
    async fn marathon_defaults_to_the_master_host() {
        let master = parse_master("10.1.2.3:5050").unwrap();
        assert_eq!(
            find_marathon(&GlobalArgs::default(), &master)
                .await
                .unwrap(),
            "http://10.1.2.3:8080"
        );
        let given = GlobalArgs {
            marathon: Some("m:9090".into()),
            ..GlobalArgs::default()
        };
        assert_eq!(
            find_marathon(&given, &master).await.unwrap(),
            "http://m:9090"
        );
    }
}
