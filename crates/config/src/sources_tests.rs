//! Unit tests of the source merging: precedence, `?flag`, the agent's attribute and resource
//! directories, unknown files, `file://`, and conflicts.

use super::*;
use crate::dir::DirEntry;

fn master_flags() -> Vec<FlagSpec> {
    vec![
        FlagSpec::value("zk").with_env("MESOS_ZK"),
        FlagSpec::value("quorum").with_env("MESOS_QUORUM"),
        FlagSpec::value("work_dir").with_env("MESOS_WORK_DIR"),
        FlagSpec::value("ip").with_env("MESOS_IP"),
        FlagSpec::value("agent_ping_timeout")
            .with_alias("slave_ping_timeout")
            .with_env("MESOS_AGENT_PING_TIMEOUT"),
        FlagSpec::boolean("log_auto_initialize").with_env("MESOS_LOG_AUTO_INITIALIZE"),
    ]
}

fn agent_flags() -> Vec<FlagSpec> {
    vec![
        FlagSpec::value("master").with_env("MESOS_MASTER"),
        FlagSpec::value("attributes").with_env("MESOS_ATTRIBUTES"),
        FlagSpec::value("resources").with_env("MESOS_RESOURCES"),
        FlagSpec::value("work_dir")
            .with_alias("work-dir")
            .with_env("MESOS_WORK_DIR"),
    ]
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(dir: &str, name: &str, contents: &str) -> DirEntry {
    DirEntry {
        path: PathBuf::from(dir).join(name),
        name: name.into(),
        kind: EntryKind::File(contents.into()),
    }
}

fn no_files(path: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no file {}", path.display()),
    ))
}

fn master_dir(entries: Vec<DirEntry>) -> ConfigDir {
    ConfigDir {
        path: "/etc/mesos-master".into(),
        entries,
        zk_sibling: Some(("/etc/mesos/zk".into(), "zk://z1:2181/mesos".into())),
    }
}

fn run(
    role: Role,
    flags: &[FlagSpec],
    words: &[&str],
    vars: &[(&str, &str)],
    dir: Option<&ConfigDir>,
) -> Result<Resolved, ConfigError> {
    let line = command_line(role, flags, &args(words))?;
    resolve(role, flags, &line, &env(vars), dir, &no_files)
}

#[test]
fn command_line_beats_environment_beats_config_dir() {
    let flags = master_flags();
    let dir = master_dir(vec![
        file("/etc/mesos-master", "ip", "10.0.0.1"),
        file("/etc/mesos-master", "quorum", "2"),
        file("/etc/mesos-master", "work_dir", "/var/lib/mesos"),
    ]);
    let resolved = run(
        Role::Master,
        &flags,
        &["--quorum=3"],
        &[("MESOS_QUORUM", "1"), ("MESOS_IP", "10.0.0.2")],
        Some(&dir),
    )
    .unwrap();
    assert_eq!(
        resolved.values["quorum"],
        Setting {
            value: "3".into(),
            source: Source::CommandLine
        }
    );
    assert_eq!(
        resolved.values["ip"],
        Setting {
            value: "10.0.0.2".into(),
            source: Source::Environment("MESOS_IP".into())
        }
    );
    assert_eq!(
        resolved.values["work_dir"].source,
        Source::ConfigFile("/etc/mesos-master/work_dir".into())
    );
    // Nothing set zk: /etc/mesos/zk does, as mesos-init-wrapper does.
    assert_eq!(
        resolved.values["zk"],
        Setting {
            value: "zk://z1:2181/mesos".into(),
            source: Source::ConfigFile("/etc/mesos/zk".into())
        }
    );
    assert_eq!(
        resolved.to_args(),
        [
            "--config_dir=/etc/mesos-master",
            "--ip=10.0.0.2",
            "--quorum=3",
            "--work_dir=/var/lib/mesos",
            "--zk=zk://z1:2181/mesos"
        ]
    );
    assert_eq!(resolved.origin("ip"), " (from MESOS_IP)");
    assert_eq!(resolved.origin("quorum"), "");
    // The sibling zk file only fills a flag nothing else sets.
    let resolved = run(
        Role::Master,
        &flags,
        &[],
        &[("MESOS_ZK", "zk://env:2181/mesos")],
        Some(&dir),
    )
    .unwrap();
    assert_eq!(resolved.get("zk"), Some("zk://env:2181/mesos"));
}

#[test]
fn an_alias_counts_as_the_flag_in_every_source() {
    let flags = master_flags();
    let dir = master_dir(vec![file(
        "/etc/mesos-master",
        "slave_ping_timeout",
        "30secs",
    )]);
    let resolved = run(Role::Master, &flags, &[], &[], Some(&dir)).unwrap();
    assert_eq!(resolved.get("agent_ping_timeout"), Some("30secs"));
    let resolved = run(
        Role::Master,
        &flags,
        &[],
        &[("MESOS_SLAVE_PING_TIMEOUT", "20secs")],
        Some(&dir),
    )
    .unwrap();
    assert_eq!(
        resolved.get("agent_ping_timeout"),
        Some("20secs"),
        "the environment's alias beats the file"
    );
    let resolved = run(
        Role::Master,
        &flags,
        &["--slave_ping_timeout", "5secs"],
        &[("MESOS_AGENT_PING_TIMEOUT", "20secs")],
        Some(&dir),
    )
    .unwrap();
    assert_eq!(resolved.get("agent_ping_timeout"), Some("5secs"));
    assert_eq!(
        resolved.to_args().last().map(String::as_str),
        Some("--zk=zk://z1:2181/mesos")
    );
    assert!(
        resolved
            .to_args()
            .contains(&"--agent_ping_timeout=5secs".to_string()),
        "canonical name for clap"
    );
}

#[test]
fn boolean_markers_and_spellings() {
    let flags = master_flags();
    let dir = master_dir(vec![file(
        "/etc/mesos-master",
        "?no-log_auto_initialize",
        "",
    )]);
    assert_eq!(
        run(Role::Master, &flags, &[], &[], Some(&dir))
            .unwrap()
            .get("log_auto_initialize"),
        Some("false")
    );
    let dir = master_dir(vec![file("/etc/mesos-master", "?log_auto_initialize", "")]);
    assert_eq!(
        run(Role::Master, &flags, &[], &[], Some(&dir))
            .unwrap()
            .get("log_auto_initialize"),
        Some("true")
    );
    assert_eq!(
        run(
            Role::Master,
            &flags,
            &["--no-log_auto_initialize"],
            &[],
            None
        )
        .unwrap()
        .get("log_auto_initialize"),
        Some("false")
    );
    assert_eq!(
        run(Role::Master, &flags, &["--log_auto_initialize"], &[], None)
            .unwrap()
            .get("log_auto_initialize"),
        Some("true")
    );
    // Marathon's convention: an empty variable is true.
    assert_eq!(
        run(
            Role::Master,
            &flags,
            &[],
            &[("MESOS_LOG_AUTO_INITIALIZE", "")],
            None
        )
        .unwrap()
        .get("log_auto_initialize"),
        Some("true")
    );
    let err = run(
        Role::Master,
        &flags,
        &["--log_auto_initialize=maybe"],
        &[],
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--log_auto_initialize: 'maybe' is not a boolean; use true or false"
    );
    let dir = master_dir(vec![file("/etc/mesos-master", "?quorum", "")]);
    let err = run(Role::Master, &flags, &[], &[], Some(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/etc/mesos-master/?quorum: marks a boolean, but --quorum takes a value"),
        "{err}"
    );
    let err = run(Role::Master, &flags, &["--no-quorum"], &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("--no-quorum: --quorum is not a boolean"),
        "{err}"
    );
}

#[test]
fn agent_attribute_and_resource_directories_are_joined() {
    let flags = agent_flags();
    let entry = |name: &str, pairs: &[(&str, &str)]| DirEntry {
        path: PathBuf::from("/etc/mesos-agent").join(name),
        name: name.into(),
        kind: EntryKind::Dir(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string(), PathBuf::from(k)))
                .collect(),
        ),
    };
    let dir = ConfigDir {
        path: "/etc/mesos-agent".into(),
        entries: vec![
            entry("attributes", &[("rack", "r1"), ("zone", "a")]),
            entry("resources", &[("cpus", "2"), ("ports", "[31000-32000]")]),
        ],
        zk_sibling: Some(("/etc/mesos/zk".into(), "zk://10.0.0.5:2181/mesos".into())),
    };
    let resolved = run(Role::Agent, &flags, &["--work-dir=/w"], &[], Some(&dir)).unwrap();
    assert_eq!(resolved.get("attributes"), Some("rack:r1;zone:a"));
    assert_eq!(
        resolved.get("resources"),
        Some("cpus:2;ports:[31000-32000]")
    );
    assert_eq!(resolved.get("master"), Some("zk://10.0.0.5:2181/mesos"));
    assert_eq!(resolved.get("work_dir"), Some("/w"));
    // The same flag from a file and a directory: refused, naming both.
    let mut both = dir.clone();
    both.entries
        .insert(0, file("/etc/mesos-agent", "attributes", "rack:r2"));
    let err = run(Role::Agent, &flags, &[], &[], Some(&both))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "--attributes: set by both /etc/mesos-agent/attributes and /etc/mesos-agent/attributes; remove one");
    // Only the agent reads such directories.
    let master = master_dir(vec![entry("attributes", &[("rack", "r1")])]);
    let err = run(Role::Master, &master_flags(), &[], &[], Some(&master))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is a directory; only tepui agent reads"),
        "{err}"
    );
}

#[test]
fn unknown_flags_name_the_file_or_flag_and_the_closest_one() {
    let flags = master_flags();
    let dir = master_dir(vec![file("/etc/mesos-master", "quorom", "2")]);
    let err = run(Role::Master, &flags, &[], &[], Some(&dir)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/mesos-master/quorom: unknown flag --quorom for tepui master; did you mean --quorum?"
    );
    let err = run(Role::Master, &flags, &["--quorom=2"], &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--quorom: unknown flag for tepui master; did you mean --quorum?"
    );
    let err = run(Role::Master, &flags, &["--frobnicate=2"], &[], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--frobnicate: unknown flag for tepui master"
    );
    let err = run(Role::Master, &flags, &["quorum"], &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("--quorum: unexpected argument 'quorum'"),
        "{err}"
    );
    let err = run(Role::Master, &flags, &["--quorum"], &[], None).unwrap_err();
    assert_eq!(err.to_string(), "--quorum: needs a value (--quorum=VALUE)");
    let err = run(Role::Master, &flags, &[], &[("MESOS_QUORUM", "")], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--quorum: MESOS_QUORUM is set but empty; unset it or give it a value"
    );
    // Unknown environment variables are not flags (tasks see MESOS_SANDBOX and the like).
    assert!(run(Role::Master, &flags, &[], &[("MESOS_SANDBOX", "/x")], None).is_ok());
}

#[test]
fn conflicts_name_both_sides() {
    let flags = master_flags();
    let err = run(
        Role::Master,
        &flags,
        &["--agent_ping_timeout=10secs", "--slave_ping_timeout=10secs"],
        &[],
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--slave_ping_timeout: conflicts with --agent_ping_timeout (the same flag under another name); give only --agent_ping_timeout"
    );
    let err = run(
        Role::Master,
        &flags,
        &["--quorum=2", "--quorum", "3"],
        &[],
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--quorum: given twice with different values ('2' and '3'); give it once"
    );
    assert!(
        run(
            Role::Master,
            &flags,
            &["--quorum=2", "--quorum=2"],
            &[],
            None
        )
        .is_ok(),
        "a repetition that agrees is harmless"
    );
    let err = run(
        Role::Master,
        &flags,
        &[],
        &[
            ("MESOS_AGENT_PING_TIMEOUT", "1secs"),
            ("MESOS_SLAVE_PING_TIMEOUT", "2secs"),
        ],
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--agent_ping_timeout: MESOS_AGENT_PING_TIMEOUT and MESOS_SLAVE_PING_TIMEOUT are both set, to different values; unset one"
    );
    let dir = master_dir(vec![
        file("/d", "agent_ping_timeout", "1secs"),
        file("/d", "slave_ping_timeout", "1secs"),
    ]);
    let err = run(Role::Master, &flags, &[], &[], Some(&dir))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "--agent_ping_timeout: set by both /d/agent_ping_timeout and /d/slave_ping_timeout; remove one");
}

#[test]
fn file_urls_are_read_from_every_source() {
    let flags = master_flags();
    let read = |path: &Path| -> std::io::Result<String> {
        match path.to_str() {
            Some("/etc/mesos/zk") => Ok("zk://10.0.0.5:2181/mesos\n".into()),
            Some("/etc/quorum") => Ok(" 2 \n".into()),
            _ => no_files(path),
        }
    };
    let line = command_line(Role::Master, &flags, &args(&["--zk=file:///etc/mesos/zk"])).unwrap();
    let resolved = resolve(
        Role::Master,
        &flags,
        &line,
        &env(&[("MESOS_QUORUM", "file:///etc/quorum")]),
        None,
        &read,
    )
    .unwrap();
    assert_eq!(resolved.get("zk"), Some("zk://10.0.0.5:2181/mesos"));
    assert_eq!(resolved.get("quorum"), Some("2"));
    let dir = master_dir(vec![file(
        "/etc/mesos-master",
        "work_dir",
        "file:///missing",
    )]);
    let err = resolve(
        Role::Master,
        &flags,
        &CommandLine::default(),
        &env(&[]),
        Some(&dir),
        &read,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("--work_dir: cannot read /missing (from file:///missing in /etc/mesos-master/work_dir): no file /missing"),
        "{err}"
    );
}

#[test]
fn config_dir_comes_from_the_command_line_or_the_environment() {
    let flags = master_flags();
    let line = command_line(
        Role::Master,
        &flags,
        &args(&["--config_dir", "/etc/mesos-master"]),
    )
    .unwrap();
    let vars = env(&[("MESOS_CONFIG_DIR", "/other")]);
    assert_eq!(
        config_dir(Role::Master, &line, &vars),
        Some(PathBuf::from("/etc/mesos-master"))
    );
    assert_eq!(
        config_dir(Role::Master, &CommandLine::default(), &vars),
        Some(PathBuf::from("/other"))
    );
    assert_eq!(
        config_dir(Role::Marathon, &CommandLine::default(), &vars),
        None
    );
    let vars = env(&[("MARATHON_CONFIG_DIR", "/etc/marathon/conf")]);
    assert_eq!(
        config_dir(Role::Marathon, &CommandLine::default(), &vars),
        Some(PathBuf::from("/etc/marathon/conf"))
    );
}
