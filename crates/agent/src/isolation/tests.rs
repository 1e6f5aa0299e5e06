use super::cgroups::{
    cfs_quota_us, cpu_shares, find_controller, parse_flat_keyed, parse_mountinfo, shares_to_weight,
};
use super::*;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::time::Instant;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tepui-isolation-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn task(resources: serde_json::Value, limits: Option<serde_json::Value>) -> TaskInfo {
    let mut task = serde_json::json!({
        "name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "S1"},
        "resources": resources, "command": {"value": "true"}
    });
    if let Some(limits) = limits {
        task["limits"] = limits;
    }
    serde_json::from_value(task).unwrap()
}

fn scalar(name: &str, value: f64) -> serde_json::Value {
    serde_json::json!({"name": name, "type": "SCALAR", "scalar": {"value": value}})
}

#[test]
fn isolation_names_parse_like_mesos() {
    let default = Selection::parse(DEFAULT_ISOLATION).unwrap();
    assert_eq!(default.cpu, Some(Backend::Posix));
    assert_eq!(default.mem, Some(Backend::Posix));
    assert!(!default.uses_cgroups());
    assert_eq!(default.names(), "posix/cpu,posix/mem");

    let cgroups = Selection::parse("cgroups/cpu, cgroups/mem").unwrap();
    assert_eq!(cgroups.names(), "cgroups/cpu,cgroups/mem");
    assert!(cgroups.uses_cgroups());
    assert_eq!(cgroups.posix_fallback().names(), "posix/cpu,posix/mem");
    assert_eq!(
        Selection::parse("cgroups/all").unwrap().names(),
        "cgroups/cpu,cgroups/mem"
    );

    let mixed = Selection::parse("cgroups/cpu,posix/mem,filesystem/linux,docker/runtime").unwrap();
    assert_eq!(mixed.names(), "cgroups/cpu,posix/mem");
    assert_eq!(mixed.ignored, vec!["filesystem/linux", "docker/runtime"]);

    assert!(Selection::parse("posix/mem,cgroups/mem")
        .unwrap_err()
        .contains("conflicts"));
    assert!(Selection::parse("cgroups/memory")
        .unwrap_err()
        .contains("unknown isolator 'cgroups/memory'"));
    assert_eq!(Selection::parse("").unwrap().names(), "");

    assert!(IsolationConfig::new(DEFAULT_ISOLATION, None, "tepui").is_ok());
    assert_eq!(
        IsolationConfig::new(DEFAULT_ISOLATION, None, "/a/b/")
            .unwrap()
            .cgroups_root,
        PathBuf::from("a/b")
    );
    for bad in ["", "../x", "a/../b", "/"] {
        assert!(
            IsolationConfig::new(DEFAULT_ISOLATION, None, bad).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn limits_come_from_resources_and_task_limits() {
    let t = task(
        serde_json::json!([scalar("cpus", 0.5), scalar("mem", 64.0)]),
        None,
    );
    assert_eq!(
        Limits::from_task(&t),
        Limits {
            cpus: Some(0.5),
            cpu_quota: Some(0.5),
            mem_bytes: Some(64 * 1024 * 1024)
        }
    );
    // Tiny memory is raised to Mesos' minimum; no resources means no limits.
    let t = task(serde_json::json!([scalar("mem", 4.0)]), None);
    assert_eq!(Limits::from_task(&t).mem_bytes, Some(MIN_MEMORY_BYTES));
    assert_eq!(
        Limits::from_task(&task(serde_json::json!([]), None)),
        Limits::default()
    );
    // `limits` lift the hard caps: Infinity removes them.
    let t = task(
        serde_json::json!([scalar("cpus", 1.0), scalar("mem", 64.0)]),
        Some(serde_json::json!({"cpus": "Infinity", "mem": 128.0})),
    );
    let limits = Limits::from_task(&t);
    assert_eq!(limits.cpus, Some(1.0));
    assert_eq!(limits.cpu_quota, None);
    assert_eq!(limits.mem_bytes, Some(128 * 1024 * 1024));
}

#[test]
fn small_formatting_helpers() {
    assert_eq!(format_mb(64 * 1024 * 1024), "64MB");
    assert_eq!(format_mb(64 * 1024 * 1024 + 512 * 1024), "64.5MB");
    let mut buf = [0u8; 24];
    let n = format_decimal(0, &mut buf);
    assert_eq!(&buf[..n], b"0");
    let n = format_decimal(4_194_304, &mut buf);
    assert_eq!(&buf[..n], b"4194304");
    let limitation = Limitation::memory(Some(64 << 20), Some(70 << 20), "test");
    assert_eq!(limitation.reason, REASON_CONTAINER_LIMITATION_MEMORY);
    assert_eq!(
        limitation.message,
        "Memory limit exceeded: Requested: 64MB Maximum Used: 70MB (test)"
    );
    assert_eq!(cpu_shares(0.5), 512);
    assert_eq!(cpu_shares(0.0001), 2);
    assert_eq!(cfs_quota_us(0.5, 100_000), 50_000);
    assert_eq!(cfs_quota_us(0.001, 100_000), 1_000);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    let keyed = parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nbroken\n");
    assert_eq!(keyed.get("oom_kill"), Some(&3));
    assert_eq!(keyed.len(), 3);
}

const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/with\\040space rw - cgroup cgroup rw,pids
garbage line
";

#[test]
fn mountinfo_finds_v1_controllers() {
    let mounts = parse_mountinfo(MOUNTINFO);
    assert_eq!(mounts.len(), 6);
    assert_eq!(mounts[5].point, PathBuf::from("/mnt/with space"));
    assert_eq!(mounts[3].super_options, vec!["rw", "memory"]);
    let memory = find_controller(&mounts, "memory", None).unwrap();
    assert_eq!(memory.version, Version::V1);
    assert_eq!(memory.mount, PathBuf::from("/sys/fs/cgroup/memory"));
    assert_eq!(
        find_controller(&mounts, "cpuacct", None).unwrap().mount,
        PathBuf::from("/sys/fs/cgroup/cpuacct")
    );
    // Nothing outside `under` counts, and a cgroup tree there without the controller is a miss.
    assert_eq!(
        find_controller(&mounts, "memory", Some(Path::new("/elsewhere"))),
        None
    );
    assert_eq!(
        find_controller(
            &mounts,
            "no_such_controller",
            Some(Path::new("/sys/fs/cgroup"))
        ),
        None
    );
}

#[test]
fn a_v2_tree_is_found_by_its_controllers_file() {
    let root = temp_dir("v2find");
    std::fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    let line = format!("60 23 0:50 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    let mounts = parse_mountinfo(&line);
    let memory = find_controller(&mounts, "memory", None).unwrap();
    assert_eq!(
        memory,
        Hierarchy {
            version: Version::V2,
            mount: root.clone()
        }
    );
    assert_eq!(find_controller(&mounts, "no_such_controller", None), None);
    // The same directory outside the mount table, named as --cgroups_hierarchy.
    assert_eq!(
        find_controller(&[], "cpu", Some(&root)).unwrap().version,
        Version::V2
    );
    std::fs::remove_dir_all(&root).unwrap();
}

fn config(isolation: &str, hierarchy: &Path) -> IsolationConfig {
    IsolationConfig::new(
        isolation,
        Some(hierarchy.to_path_buf()),
        DEFAULT_CGROUPS_ROOT,
    )
    .unwrap()
}

#[test]
fn unusable_cgroups_fall_back_to_posix_with_a_warning() {
    let chosen = from_flags(&config(
        "cgroups/cpu,cgroups/mem",
        Path::new("/nonexistent/cgroup"),
    ));
    assert_eq!(chosen.isolator.name(), "posix/cpu,posix/mem");
    let warning = chosen.warning.unwrap();
    assert!(
        warning.starts_with("--isolation=cgroups/cpu,cgroups/mem requested but no cgroup memory controller is mounted under /nonexistent/cgroup"),
        "{warning}"
    );
    assert!(
        warning.ends_with(": falling back to posix/cpu,posix/mem"),
        "{warning}"
    );

    // A directory that looks like a v1 tree but is not a cgroup file system.
    let fake = temp_dir("notcgroup");
    std::fs::create_dir_all(fake.join("memory")).unwrap();
    let chosen = from_flags(&config("cgroups/mem", &fake));
    assert_eq!(chosen.isolator.name(), "posix/mem");
    let warning = chosen.warning.unwrap();
    assert!(
        warning.contains("is not a cgroup v1 memory hierarchy"),
        "{warning}"
    );
    assert!(warning.ends_with("falling back to posix/mem"), "{warning}");

    std::fs::remove_dir_all(&fake).unwrap();

    // A file where the containers' root group should be: nothing can be created under it.
    let fake = temp_dir("notwritable");
    std::fs::create_dir_all(fake.join("memory")).unwrap();
    std::fs::write(fake.join("memory").join("tepui"), "").unwrap();
    let chosen = from_flags(&config("cgroups/mem", &fake));
    let warning = chosen.warning.unwrap();
    assert!(warning.contains("is not writable"), "{warning}");
    std::fs::remove_dir_all(&fake).unwrap();

    // Ignored names are reported too; the default needs no warning.
    let chosen = from_flags(
        &IsolationConfig::new("posix/cpu,posix/mem,filesystem/linux", None, "tepui").unwrap(),
    );
    assert!(chosen
        .warning
        .unwrap()
        .contains("filesystem/linux not supported"));
    assert!(
        from_flags(&IsolationConfig::new(DEFAULT_ISOLATION, None, "tepui").unwrap())
            .warning
            .is_none()
    );
}

/// Creates empty files (as a cgroup file system would show them) in `dir`.
fn touch(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn v1_values_are_written_to_each_hierarchy() {
    let h = temp_dir("fakev1");
    touch(&h.join("memory/tepui"), &[("memory.limit_in_bytes", "")]);
    touch(&h.join("cpu/tepui"), &[("cpu.shares", "")]);
    touch(&h.join("cpuacct/tepui"), &[("cpuacct.stat", "")]);
    let selection = Selection::parse("cgroups/cpu,cgroups/mem").unwrap();
    let isolator = CgroupsIsolator::new(&selection, Some(&h), Path::new("tepui")).unwrap();
    let (memory, cpu, cpuacct) = isolator.hierarchies();
    assert_eq!(memory.unwrap().mount, h.join("memory"));
    assert_eq!(cpu.unwrap().version, Version::V1);
    assert_eq!(cpuacct.unwrap().mount, h.join("cpuacct"));
    // What the kernel would create with the group.
    touch(
        &h.join("memory/tepui/c1"),
        &[
            ("memory.limit_in_bytes", ""),
            ("memory.memsw.limit_in_bytes", ""),
            ("cgroup.procs", ""),
        ],
    );
    touch(
        &h.join("cpu/tepui/c1"),
        &[
            ("cpu.shares", ""),
            ("cpu.cfs_quota_us", ""),
            ("cpu.cfs_period_us", "200000\n"),
            ("cgroup.procs", ""),
        ],
    );
    touch(
        &h.join("cpuacct/tepui/c1"),
        &[
            ("cgroup.procs", ""),
            ("cpuacct.stat", "user 250\nsystem 50\n"),
        ],
    );
    let limits = Limits {
        cpus: Some(1.5),
        cpu_quota: Some(1.5),
        mem_bytes: Some(64 << 20),
    };
    let prepared = isolator.prepare("c1", &limits).unwrap();
    assert_eq!(
        read(h.join("memory/tepui/c1/memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(
        read(h.join("memory/tepui/c1/memory.memsw.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(h.join("cpu/tepui/c1/cpu.shares")), "1536");
    assert_eq!(read(h.join("cpu/tepui/c1/cpu.cfs_quota_us")), "300000");
    assert_eq!(prepared.pre_exec().unwrap().raw_fds().len(), 3);
    assert_eq!(isolator.group_dirs("c1").len(), 3);
    assert_eq!(isolator.containers(), vec!["c1"]);
    let usage = isolator.usage("c1").unwrap();
    assert_eq!(usage.cpus_limit, Some(1.5));
    assert_eq!(usage.mem_limit_bytes, Some(64 << 20));
    assert!(usage.cpus_user_time_secs.unwrap() > 0.0);
    // No OOM counter file: no limitation.
    assert_eq!(isolator.limitation("c1"), None);
    touch(
        &h.join("memory/tepui/c1"),
        &[(
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )],
    );
    let limitation = isolator.limitation("c1").unwrap();
    assert_eq!(limitation.reason, REASON_CONTAINER_LIMITATION_MEMORY);
    assert!(
        limitation.message.contains("Requested: 64MB"),
        "{}",
        limitation.message
    );
    assert!(isolator.prepare("../x", &limits).is_err());

    // What crosses to a launcher daemon, and back.
    let spawn = prepared.spawn_isolation();
    assert_eq!(spawn.cgroup_procs.len(), 3);
    assert_eq!(
        spawn.cgroup_procs[0],
        h.join("memory/tepui/c1/cgroup.procs")
    );
    let value = spawn.to_value();
    assert_eq!(SpawnIsolation::from_value(&value).unwrap(), spawn);
    assert_eq!(spawn.open().unwrap().unwrap().raw_fds().len(), 3);
    assert_eq!(
        SpawnIsolation::from_value(&serde_json::Value::Null).unwrap(),
        SpawnIsolation::default()
    );
    assert!(SpawnIsolation::default().to_value().is_null());
    assert!(SpawnIsolation::default().open().unwrap().is_none());
    assert!(SpawnIsolation::from_value(&serde_json::json!({"cgroup_procs": 7})).is_err());

    // After an agent restart: groups on the host that nobody tracks, and re-attaching to one.
    let fresh = CgroupsIsolator::new(&selection, Some(&h), Path::new("tepui")).unwrap();
    assert_eq!(fresh.leftover_containers(), vec!["c1"]);
    assert!(fresh.recover("gone", &limits, None).is_err());
    fresh.recover("c1", &limits, Some(4_000_000)).unwrap();
    assert!(fresh.leftover_containers().is_empty());
    assert_eq!(fresh.containers(), vec!["c1"]);
    assert_eq!(
        fresh.limitation("c1").unwrap().reason,
        REASON_CONTAINER_LIMITATION_MEMORY
    );
    std::fs::remove_dir_all(&h).unwrap();
}

#[test]
fn v2_values_go_to_one_unified_group() {
    let h = temp_dir("fakev2");
    touch(
        &h,
        &[
            ("cgroup.controllers", "cpu io memory pids\n"),
            ("cgroup.subtree_control", ""),
        ],
    );
    touch(
        &h.join("tepui"),
        &[("cgroup.subtree_control", "cpu memory\n")],
    );
    let selection = Selection::parse("cgroups/cpu,cgroups/mem").unwrap();
    let isolator = CgroupsIsolator::new(&selection, Some(&h), Path::new("tepui")).unwrap();
    // The root's subtree_control was asked for both controllers.
    assert!(read(h.join("cgroup.subtree_control")).starts_with('+'));
    touch(
        &h.join("tepui/c2"),
        &[
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("cpu.weight", "100\n"),
            ("cpu.max", "max 100000\n"),
            ("cgroup.procs", ""),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
        ],
    );
    let limits = Limits {
        cpus: Some(0.25),
        cpu_quota: Some(0.25),
        mem_bytes: Some(128 << 20),
    };
    let prepared = isolator.prepare("c2", &limits).unwrap();
    assert_eq!(isolator.group_dirs("c2"), vec![h.join("tepui/c2")]);
    assert_eq!(prepared.pre_exec().unwrap().raw_fds().len(), 1);
    assert_eq!(read(h.join("tepui/c2/memory.max")), "134217728");
    assert_eq!(read(h.join("tepui/c2/memory.swap.max")), "0");
    assert_eq!(
        read(h.join("tepui/c2/cpu.weight")),
        shares_to_weight(256).to_string()
    );
    assert!(read(h.join("tepui/c2/cpu.max")).starts_with("25000 100000"));
    assert_eq!(isolator.limitation("c2"), None);
    touch(
        &h.join("tepui/c2"),
        &[("memory.events", "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")],
    );
    cgroups::check_now(&isolator);
    let mut watch = isolator.watch("c2");
    assert_eq!(
        watch.try_recv().unwrap().reason,
        REASON_CONTAINER_LIMITATION_MEMORY
    );
    std::fs::remove_dir_all(&h).unwrap();
}

/// Waits for `child` with a deadline; SIGKILLs it if the deadline passes.
fn wait_with_deadline(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const HOG: &str = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); sleep 30";

#[test]
fn posix_mem_kills_a_group_over_its_limit() {
    let isolator = PosixIsolator::with_period(true, Duration::from_millis(50));
    let limits = Limits {
        cpus: Some(0.1),
        cpu_quota: Some(0.1),
        mem_bytes: Some(64 << 20),
    };
    assert!(isolator
        .prepare("hog", &limits)
        .unwrap()
        .pre_exec()
        .is_none());
    let mut watch = isolator.watch("hog");
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(HOG)
        .process_group(0)
        .spawn()
        .unwrap();
    isolator.isolate("hog", child.id()).unwrap();
    // And a well-behaved neighbour under the same limit is left alone.
    isolator.prepare("calm", &limits).unwrap();
    let mut calm = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("sleep 30")
        .process_group(0)
        .spawn()
        .unwrap();
    isolator.isolate("calm", calm.id()).unwrap();
    let usage = isolator.usage("calm").unwrap();
    assert_eq!(usage.mem_limit_bytes, Some(64 << 20));
    assert!(usage.processes.unwrap() >= 1);

    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let limitation = isolator.limitation("hog").unwrap();
    assert_eq!(limitation.reason, REASON_CONTAINER_LIMITATION_MEMORY);
    assert!(
        limitation.message.contains("Requested: 64MB"),
        "{}",
        limitation.message
    );
    assert_eq!(watch.try_recv().unwrap(), limitation);
    posix::check_now(&isolator);
    assert_eq!(isolator.limitation("calm"), None);
    assert_eq!(calm.try_wait().unwrap(), None, "the neighbour still runs");
    let _ = calm.kill();
    let _ = calm.wait();
    isolator.cleanup("hog").unwrap();
    isolator.cleanup("calm").unwrap();
    assert!(isolator.containers().is_empty());
}

/// The host's real cgroups (root, cgroup v1 or v2 with memory and cpu): a hog under a 64 MB limit
/// is OOM-killed by the kernel and reported; shares and quota are in place while it runs.
#[test]
fn real_cgroups_enforce_memory_and_cpu() {
    let config = IsolationConfig::new("cgroups/cpu,cgroups/mem", None, "tepui").unwrap();
    let chosen = from_flags(&config);
    assert!(
        chosen.warning.is_none(),
        "this test needs writable memory and cpu cgroups (root on a host that mounts them): {:?}",
        chosen.warning
    );
    let isolator = chosen.isolator;
    assert_eq!(isolator.name(), "cgroups/cpu,cgroups/mem");
    let selection = Selection::parse("cgroups/cpu,cgroups/mem").unwrap();
    let cg = CgroupsIsolator::new(&selection, None, Path::new("tepui")).unwrap();
    let id = format!("unit-{}", uuid::Uuid::new_v4());
    let limits = Limits {
        cpus: Some(0.5),
        cpu_quota: Some(0.5),
        mem_bytes: Some(64 << 20),
    };
    let prepared = isolator.prepare(&id, &limits).unwrap();
    assert!(prepared.pre_exec().is_some());
    // Spawn as the launcher daemon would: from the serialised form, opened in the spawner.
    let wire = prepared.spawn_isolation().to_value();
    let step = SpawnIsolation::from_value(&wire)
        .unwrap()
        .open()
        .unwrap()
        .unwrap();
    drop(prepared);
    let dirs = cg.group_dirs(&id);
    assert!(dirs.iter().all(|d| d.is_dir()), "{dirs:?}");
    let (memory, cpu, _) = cg.hierarchies();
    let memory = memory.unwrap();
    let cpu = cpu.unwrap();
    let mem_dir = memory.mount.join("tepui").join(&id);
    let cpu_dir = cpu.mount.join("tepui").join(&id);
    match memory.version {
        Version::V1 => assert_eq!(
            read(mem_dir.join("memory.limit_in_bytes")).trim(),
            "67108864"
        ),
        Version::V2 => assert_eq!(read(mem_dir.join("memory.max")).trim(), "67108864"),
    }
    match cpu.version {
        Version::V1 => {
            assert_eq!(read(cpu_dir.join("cpu.shares")).trim(), "512");
            let period: u64 = read(cpu_dir.join("cpu.cfs_period_us"))
                .trim()
                .parse()
                .unwrap();
            assert_eq!(
                read(cpu_dir.join("cpu.cfs_quota_us")).trim(),
                (period / 2).to_string()
            );
        }
        Version::V2 => assert!(read(cpu_dir.join("cpu.max")).starts_with("50000 ")),
    }

    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(HOG).process_group(0);
    // SAFETY: `run` only calls getpid and write.
    unsafe { cmd.pre_exec(move || step.run()) };
    let mut child = cmd.spawn().unwrap();
    isolator.isolate(&id, child.id()).unwrap();
    let procs = read(mem_dir.join("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l.trim() == child.id().to_string()),
        "the child joined its memory cgroup: {procs:?}"
    );
    let usage = isolator.usage(&id).unwrap();
    assert_eq!(usage.mem_limit_bytes, Some(64 << 20));
    assert_eq!(usage.cpus_limit, Some(0.5));
    assert!(usage.processes.is_some(), "{usage:?}");
    let status = wait_with_deadline(&mut child, Duration::from_secs(30));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let limitation = isolator
        .limitation(&id)
        .expect("an OOM kill is a limitation");
    assert_eq!(limitation.reason, REASON_CONTAINER_LIMITATION_MEMORY);
    assert!(
        limitation.message.contains("Requested: 64MB"),
        "{}",
        limitation.message
    );
    isolator.cleanup(&id).unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    isolator.cleanup(&id).unwrap();
}

#[test]
fn a_slow_poll_spaces_the_next_one_out() {
    let period = Duration::from_millis(500);
    assert_eq!(poll_wait(period, Duration::from_millis(3)), period);
    // A pass over /proc of many thousand processes taking 80 ms: the next comes 1.6 s later.
    assert_eq!(
        poll_wait(period, Duration::from_millis(80)),
        Duration::from_millis(1600)
    );
}
