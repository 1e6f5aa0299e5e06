//! Unit tests of the start-up checks on made-up host facts.

use super::*;
use crate::{Setting, Source};
use std::collections::BTreeMap;

fn no_dns(_: &str) -> Vec<IpAddr> {
    Vec::new()
}

fn debian_host() -> HostFacts<'static> {
    // A fresh Debian install: the hostname resolves to 127.0.1.1 only.
    HostFacts {
        hostname: "m1".into(),
        hostname_addresses: vec!["127.0.1.1".parse().unwrap()],
        resolve: &no_dns,
    }
}

fn good_host() -> HostFacts<'static> {
    HostFacts {
        hostname: "m1".into(),
        hostname_addresses: vec!["10.0.0.11".parse().unwrap()],
        resolve: &no_dns,
    }
}

fn resolved(role: Role, pairs: &[(&str, &str)]) -> Resolved {
    let values: BTreeMap<String, Setting> = pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Setting {
                    value: v.to_string(),
                    source: Source::CommandLine,
                },
            )
        })
        .collect();
    Resolved {
        role,
        values,
        config_dir: None,
    }
}

fn err(r: &Resolved, host: &HostFacts) -> String {
    check(r, host).unwrap_err().to_string()
}

#[test]
fn a_master_advertising_loopback_to_remote_zookeeper_is_refused() {
    let r = resolved(
        Role::Master,
        &[
            ("zk", "zk://10.0.0.5:2181/mesos"),
            ("quorum", "2"),
            ("work_dir", "/w"),
        ],
    );
    assert_eq!(
        err(&r, &debian_host()),
        "--ip: this master would advertise 127.0.0.1 (`m1` resolves only to 127.0.1.1) to other hosts through ZooKeeper at \
         10.0.0.5:2181; set --ip (or --advertise_ip) to this host's address"
    );
    assert!(check(&r, &good_host()).is_ok());
    let r = resolved(
        Role::Master,
        &[
            ("zk", "zk://10.0.0.5:2181/mesos"),
            ("quorum", "2"),
            ("work_dir", "/w"),
            ("ip", "127.0.0.1"),
        ],
    );
    assert!(err(&r, &good_host())
        .starts_with("--ip: this master would advertise 127.0.0.1 to other hosts"));
    let r = resolved(
        Role::Master,
        &[
            ("zk", "zk://u:p@10.0.0.5:2181/mesos"),
            ("quorum", "2"),
            ("work_dir", "/w"),
            ("ip", "0.0.0.0"),
        ],
    );
    assert!(err(&r, &good_host())
        .starts_with("--ip: this master would advertise 127.0.0.1 (--ip=0.0.0.0 publishes"));
    let r = resolved(
        Role::Master,
        &[
            ("zk", "zk://10.0.0.5:2181/mesos"),
            ("quorum", "2"),
            ("work_dir", "/w"),
            ("ip", "0.0.0.0"),
            ("advertise_ip", "10.0.0.11"),
        ],
    );
    assert!(check(&r, &debian_host()).is_ok());
    let r = resolved(
        Role::Master,
        &[
            ("zk", "zk://10.0.0.5:2181/mesos"),
            ("quorum", "2"),
            ("work_dir", "/w"),
            ("hostname", "localhost"),
        ],
    );
    assert!(err(&r, &good_host())
        .starts_with("--hostname: this master would publish the loopback name 'localhost'"));
    // All on loopback (tests, local clusters): fine whatever the hostname resolves to.
    let r = resolved(
        Role::Master,
        &[
            ("zk", "zk://127.77.1.11:2181,localhost:2181/mesos"),
            ("quorum", "2"),
            ("work_dir", "/w"),
        ],
    );
    assert!(check(&r, &debian_host()).is_ok());
}

#[test]
fn quorum_conflicts_and_missing_work_dir() {
    let r = resolved(Role::Master, &[("quorum", "2")]);
    assert_eq!(
        err(&r, &good_host()),
        "--quorum: --quorum=2 has no effect without --zk (a standalone master is its own majority); drop --quorum, or set \
         --zk=zk://host:2181/mesos to run masters as a group"
    );
    let r = resolved(
        Role::Master,
        &[
            ("quorum", "2"),
            ("zk", "zk://127.0.0.1:2181/mesos"),
            ("registry", "in_memory"),
        ],
    );
    assert!(err(&r, &good_host()).starts_with(
        "--quorum: --quorum=2 has no effect with --registry=in_memory; drop --quorum"
    ));
    let r = resolved(
        Role::Master,
        &[
            ("quorum", "0"),
            ("zk", "zk://127.0.0.1:2181/mesos"),
            ("work_dir", "/w"),
        ],
    );
    assert!(err(&r, &good_host()).starts_with("--quorum: 0 is not a majority"));
    let r = resolved(
        Role::Master,
        &[("quorum", "1"), ("zk", "zk://127.0.0.1:2181/mesos")],
    );
    assert!(err(&r, &good_host()).ends_with("; set --work_dir=/var/lib/mesos"));
    let r = resolved(
        Role::Master,
        &[
            ("zk", "zk://127.0.0.1:2181/mesos"),
            ("registry", "in_memory"),
        ],
    );
    assert!(
        check(&r, &good_host()).is_ok(),
        "an in-memory registry needs neither --quorum nor --work_dir"
    );
    assert!(
        check(&resolved(Role::Master, &[]), &debian_host()).is_ok(),
        "a standalone master on a laptop"
    );
    let r = resolved(Role::Master, &[("log_auto_initialize", "false")]);
    assert!(err(&r, &good_host())
        .starts_with("--log_auto_initialize: has no effect with --registry=in_memory"));
    // The origin of a value is named, so the operator knows which file to fix.
    let mut r = resolved(Role::Master, &[("quorum", "2")]);
    r.values.get_mut("quorum").unwrap().source =
        Source::ConfigFile("/etc/mesos-master/quorum".into());
    assert!(err(&r, &good_host())
        .starts_with("--quorum: --quorum=2 (from /etc/mesos-master/quorum) has no effect"));
}

#[test]
fn agent_checks() {
    let r = resolved(Role::Agent, &[("work_dir", "/w")]);
    assert!(err(&r, &good_host()).starts_with("--master: is required; set --master=zk://"));
    let r = resolved(Role::Agent, &[("master", "127.0.0.1:5050")]);
    assert_eq!(err(&r, &good_host()), "--work_dir: is required (sandboxes and checkpoints live there); set --work_dir=/var/lib/mesos");
    let r = resolved(
        Role::Agent,
        &[("master", "zk://10.0.0.5:2181/mesos"), ("work_dir", "/w")],
    );
    // Without --ip the agent takes the address the host name resolves to (Mesos' default) ...
    assert!(check(&r, &good_host()).is_ok());
    // ... which on a fresh Debian install is loopback only.
    assert_eq!(
        err(&r, &debian_host()),
        "--ip: this agent would advertise 127.0.0.1 (the default --ip; `m1` resolves only to 127.0.1.1) to other hosts \
         through ZooKeeper at 10.0.0.5:2181; set --ip (or --advertise_ip) to this host's address"
    );
    let r = resolved(
        Role::Agent,
        &[
            ("master", "10.0.0.11:5050"),
            ("work_dir", "/w"),
            ("ip", "127.0.0.1"),
        ],
    );
    assert!(err(&r, &good_host())
        .starts_with("--ip: this agent would advertise 127.0.0.1 to the master at 10.0.0.11:5050"));
    let r = resolved(
        Role::Agent,
        &[
            ("master", "10.0.0.11:5050"),
            ("work_dir", "/w"),
            ("ip", "0.0.0.0"),
            ("advertise_ip", "10.0.0.51"),
        ],
    );
    assert!(check(&r, &good_host()).is_ok());
    let r = resolved(
        Role::Agent,
        &[("master", "zk://127.0.0.1:2181/mesos"), ("work_dir", "/w")],
    );
    assert!(check(&r, &good_host()).is_ok(), "all on loopback");
}

#[test]
fn marathon_checks() {
    let r = resolved(
        Role::Marathon,
        &[
            ("master", "zk://10.0.0.5:2181/mesos"),
            ("zk", "zk://10.0.0.5:2181/marathon"),
        ],
    );
    assert_eq!(
        err(&r, &good_host()),
        "--hostname: this Marathon would advertise 127.0.0.1 (the default without --hostname) to other hosts through ZooKeeper at \
         10.0.0.5:2181; set --hostname to this host's address"
    );
    let r = resolved(
        Role::Marathon,
        &[("master", "10.0.0.11:5050"), ("hostname", "localhost")],
    );
    assert!(err(&r, &good_host())
        .starts_with("--hostname: this Marathon would advertise localhost to the master at"));
    let r = resolved(
        Role::Marathon,
        &[("master", "10.0.0.11:5050"), ("http_address", "10.0.0.11")],
    );
    assert!(check(&r, &good_host()).is_ok());
    let r = resolved(Role::Marathon, &[("master", "zk://127.0.0.1:2181/mesos")]);
    assert!(check(&r, &good_host()).is_ok(), "default --zk is localhost");
    assert!(err(&resolved(Role::Marathon, &[]), &good_host()).starts_with("--master: is required"));
}

#[test]
fn zk_servers_of_urls() {
    assert_eq!(
        zk_servers("zk://u:p@ss@h1:2181,h2:2181/mesos"),
        ["h1:2181", "h2:2181"]
    );
    assert!(zk_servers("host:5050").is_empty());
}

#[test]
fn work_dir_must_be_creatable_and_writable() {
    let root = std::env::temp_dir().join(format!("tepui-config-workdir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let ok = root.join("agent");
    let r = resolved(
        Role::Agent,
        &[("master", "m:5050"), ("work_dir", ok.to_str().unwrap())],
    );
    check_work_dir(&r).unwrap();
    assert!(ok.is_dir());
    assert_eq!(
        std::fs::read_dir(&ok).unwrap().count(),
        0,
        "the probe is removed"
    );
    std::fs::write(root.join("file"), "").unwrap();
    let blocked = root.join("file/agent");
    let r = resolved(
        Role::Agent,
        &[
            ("master", "m:5050"),
            ("work_dir", blocked.to_str().unwrap()),
        ],
    );
    let e = check_work_dir(&r).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("--work_dir: cannot create {}", blocked.display())),
        "{e}"
    );
    let r = resolved(Role::Master, &[("work_dir", blocked.to_str().unwrap())]);
    assert!(
        check_work_dir(&r).is_ok(),
        "an in-memory master does not use --work_dir"
    );
    let _ = std::fs::remove_dir_all(&root);
}
