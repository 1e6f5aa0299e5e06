//! Offer matching and task building without processes (marathon-api.md §2 constraints, roles,
//! ports; §7 "Task environment"; mesos-http-api.md §8.4 TaskInfo).

use marathon::leader::offers::OfferView;
use marathon::leader::ports::assign_service_ports;
use marathon::leader::task_build::{build_task, task_env, Placement};
use marathon_model::{AppDefinition, ParseContext, Timestamp};
use proto::scheduler::Offer;
use serde_json::json;
use std::collections::BTreeMap;

fn offer(hostname: &str, role: &str, mem: f64, ports: (u64, u64), rack: &str) -> Offer {
    serde_json::from_value(json!({
        "id": {"value": "O1"}, "framework_id": {"value": "F"}, "agent_id": {"value": format!("S-{hostname}")},
        "hostname": hostname,
        "resources": [
            {"name":"cpus","type":"SCALAR","scalar":{"value":2.0},"allocation_info":{"role":role}},
            {"name":"mem","type":"SCALAR","scalar":{"value":mem},"allocation_info":{"role":role}},
            {"name":"disk","type":"SCALAR","scalar":{"value":100.0},"allocation_info":{"role":role}},
            {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":ports.0,"end":ports.1}]},"allocation_info":{"role":role}}
        ],
        "attributes": [{"name":"rack","type":"TEXT","text":{"value":rack}}],
        "allocation_info": {"role": role}
    }))
    .expect("offer")
}

fn app(v: serde_json::Value) -> AppDefinition {
    let mut def = AppDefinition::from_json(&v, &ParseContext::post()).expect("app");
    let mut in_use = std::collections::BTreeSet::new();
    in_use.insert(10000);
    assign_service_ports(&mut def, None, &in_use, (10000, 10100)).expect("service ports");
    def.version = Some(Timestamp(1_714_564_800_123));
    def
}

fn env_map(def: &AppDefinition, p: &Placement) -> BTreeMap<String, String> {
    task_env(def, p).into_iter().collect()
}

#[test]
fn environment_follows_section_7() {
    let def = app(
        json!({"id":"/prod/web","cmd":"./serve","cpus":0.5,"mem":64,"disk":1,
        "portDefinitions":[{"port":0,"name":"http"},{"port":0}],
        "labels":{"team":"web","tier-x":"front"},"env":{"MODE":"prod","HOST":"overridden"}}),
    );
    let p = Placement {
        task_id: "prod_web.instance-x._app.1".into(),
        agent_id: "S1".into(),
        hostname: "agent-1".into(),
        host_ports: vec![31005, 31006],
        role: "*".into(),
    };
    let env = env_map(&def, &p);
    assert_eq!(env["PORT0"], "31005");
    assert_eq!(env["PORT1"], "31006");
    assert_eq!(env["PORT"], "31005");
    assert_eq!(env["PORTS"], "31005,31006");
    assert_eq!(env["PORT_HTTP"], "31005");
    assert_eq!(
        env["PORT_10001"], "31005",
        "service port 10000 is taken, so the app got 10001"
    );
    assert_eq!(env["MESOS_TASK_ID"], "prod_web.instance-x._app.1");
    assert_eq!(env["MARATHON_APP_ID"], "/prod/web");
    assert_eq!(env["MARATHON_APP_VERSION"], "2024-05-01T12:00:00.123Z");
    assert_eq!(env["MARATHON_APP_RESOURCE_CPUS"], "0.5");
    assert_eq!(env["MARATHON_APP_RESOURCE_MEM"], "64.0");
    assert_eq!(env["MARATHON_APP_RESOURCE_DISK"], "1.0");
    assert_eq!(env["MARATHON_APP_RESOURCE_GPUS"], "0");
    assert_eq!(env["MARATHON_APP_LABELS"], "TEAM TIER_X");
    assert_eq!(env["MARATHON_APP_LABEL_TIER_X"], "front");
    assert_eq!(env["MODE"], "prod");
    assert_eq!(env["HOST"], "overridden", "the app's env wins");
}

#[test]
fn task_info_carries_command_resources_role_kill_policy_and_command_checks() {
    let def = app(
        json!({"id":"/a","args":["/bin/echo","hi"],"cpus":0.25,"mem":32,"ports":[0],"taskKillGracePeriodSeconds":7,
        "labels":{"k":"v"},"healthChecks":[{"protocol":"COMMAND","command":{"value":"true"}}]}),
    );
    let p = Placement {
        task_id: "a.instance-x._app.1".into(),
        agent_id: "S1".into(),
        hostname: "h".into(),
        host_ports: vec![31000],
        role: "dev".into(),
    };
    let t = serde_json::to_value(build_task(&def, &p)).unwrap();
    assert_eq!(t["command"]["shell"], false);
    assert_eq!(t["command"]["value"], "/bin/echo");
    assert_eq!(t["command"]["arguments"], json!(["/bin/echo", "hi"]));
    assert_eq!(
        t["kill_policy"]["grace_period"]["nanoseconds"],
        7_000_000_000i64
    );
    assert_eq!(t["labels"]["labels"][0], json!({"key":"k","value":"v"}));
    assert_eq!(t["health_check"]["type"], "COMMAND");
    assert_eq!(t["health_check"]["command"]["value"], "true");
    let resources = t["resources"].as_array().unwrap();
    assert!(resources
        .iter()
        .all(|r| r["allocation_info"]["role"] == "dev"));
    let ports = resources.iter().find(|r| r["name"] == "ports").unwrap();
    assert_eq!(
        ports["ranges"]["range"],
        json!([{"begin":31000,"end":31000}])
    );
    let shell = app(json!({"id":"/b","cmd":"echo hello; sleep 10","mem":16}));
    let t = serde_json::to_value(build_task(&shell, &p)).unwrap();
    assert_eq!(t["command"]["shell"], true);
    assert_eq!(t["command"]["value"], "echo hello; sleep 10");
}

#[test]
fn resources_and_ports_are_consumed_per_placement() {
    let def = app(json!({"id":"/a","cmd":"x","cpus":0.5,"mem":100,"ports":[0,0]}));
    let mut view = OfferView::new(&offer("h1", "*", 250.0, (31000, 31004), "r1"));
    assert_eq!(view.fit(&def, &[]), Ok(vec![31000, 31001]));
    assert_eq!(view.fit(&def, &[]), Ok(vec![31002, 31003]));
    assert_eq!(view.fit(&def, &[]), Err("InsufficientMemory"));
    let small = app(json!({"id":"/s","cmd":"x","cpus":0.1,"mem":10,"ports":[0,0]}));
    assert_eq!(
        view.fit(&small, &[]),
        Err("InsufficientPorts"),
        "one port left"
    );
    assert!((view.mem - 50.0).abs() < 1e-9, "a failed fit takes nothing");
}

#[test]
fn require_ports_uses_the_declared_ports() {
    let def = app(
        json!({"id":"/a","cmd":"x","cpus":0.1,"mem":10,"portDefinitions":[{"port":31003}],"requirePorts":true}),
    );
    let mut view = OfferView::new(&offer("h1", "*", 100.0, (31000, 31004), "r1"));
    assert_eq!(view.fit(&def, &[]), Ok(vec![31003]));
    assert_eq!(
        view.fit(&def, &[]),
        Err("InsufficientPorts"),
        "31003 is taken now"
    );
}

#[test]
fn constraints_and_roles_are_checked() {
    let unique =
        app(json!({"id":"/u","cmd":"x","cpus":0.1,"mem":10,"constraints":[["hostname","UNIQUE"]]}));
    let mut h1 = OfferView::new(&offer("h1", "*", 100.0, (31000, 31004), "r1"));
    let placed_on_h1 = vec![h1.agent.clone()];
    assert_eq!(h1.fit(&unique, &placed_on_h1), Err("UnfulfilledConstraint"));
    let mut h2 = OfferView::new(&offer("h2", "*", 100.0, (31000, 31004), "r2"));
    assert!(h2.fit(&unique, &placed_on_h1).is_ok());

    let like =
        app(json!({"id":"/l","cmd":"x","cpus":0.1,"mem":10,"constraints":[["rack","LIKE","r2"]]}));
    assert_eq!(h1.fit(&like, &[]), Err("UnfulfilledConstraint"));
    assert!(h2.fit(&like, &[]).is_ok());

    let prod_only =
        app(json!({"id":"/p","cmd":"x","cpus":0.1,"mem":10,"acceptedResourceRoles":["prod"]}));
    assert_eq!(h1.fit(&prod_only, &[]), Err("UnfulfilledRole"));
    let mut prod = OfferView::new(&offer("h3", "prod", 100.0, (31000, 31004), "r1"));
    assert!(prod.fit(&prod_only, &[]).is_ok());
    let default_role = app(json!({"id":"/d","cmd":"x","cpus":0.1,"mem":10}));
    assert_eq!(
        prod.fit(&default_role, &[]),
        Err("UnfulfilledRole"),
        "an app of role * does not take prod resources"
    );
}
