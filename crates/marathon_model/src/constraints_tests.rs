use super::*;

fn c(parts: &[&str]) -> Constraint {
    Constraint::from_parts(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

fn err(parts: &[&str]) -> ConstraintError {
    Constraint::from_parts(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap_err()
}

fn agent(host: &str, attrs: &[(&str, AttrValue)]) -> AgentInfo {
    AgentInfo {
        hostname: host.into(),
        region: Some("eu".into()),
        zone: Some(format!("zone-{host}")),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn rack(host: &str, r: &str) -> AgentInfo {
    agent(host, &[("rack", AttrValue::Text(r.into()))])
}

#[test]
fn parse_rules_per_operator() {
    assert_eq!(err(&["hostname"]), ConstraintError::Arity);
    assert_eq!(err(&["a", "b", "c", "d"]), ConstraintError::Arity);
    assert!(matches!(
        err(&["hostname", "SOMETIMES"]),
        ConstraintError::UnknownOperator(_)
    ));
    assert_eq!(
        err(&["hostname", "UNIQUE", "x"]),
        ConstraintError::ValueNotAllowed("UNIQUE")
    );
    assert_eq!(c(&["hostname", "unique"]).operator, Operator::Unique);
    c(&["rack", "CLUSTER"]);
    c(&["rack", "CLUSTER", "r1"]);
    c(&["rack", "GROUP_BY"]);
    c(&["rack", "GROUP_BY", "3"]);
    assert!(matches!(
        err(&["rack", "GROUP_BY", "x"]),
        ConstraintError::NotAnInteger(_)
    ));
    assert_eq!(
        err(&["rack", "LIKE"]),
        ConstraintError::ValueRequired("LIKE")
    );
    assert!(matches!(
        err(&["rack", "UNLIKE", "(["]),
        ConstraintError::InvalidRegex(_)
    ));
    c(&["rack", "LIKE", "r[0-9]+"]);
    assert_eq!(
        err(&["rack", "MAX_PER"]),
        ConstraintError::ValueRequired("MAX_PER")
    );
    assert!(matches!(
        err(&["rack", "MAX_PER", "-1"]),
        ConstraintError::NotAnInteger(_)
    ));
    c(&["rack", "IS", "a_b/c.d-1"]);
    assert!(matches!(
        err(&["rack", "IS", "a b"]),
        ConstraintError::InvalidIsValue(_)
    ));
    assert_eq!(c(&["rack", "IS", "x"]).to_parts(), ["rack", "IS", "x"]);
    assert_eq!(c(&["rack", "LIKE", "x"]).to_string(), "[rack, LIKE, x]");
}

#[test]
fn unique_hostname() {
    let u = c(&["hostname", "UNIQUE"]);
    let a = agent("a", &[]);
    assert!(u.is_met(&a, &[]).is_ok());
    assert!(u.is_met(&a, &[agent("b", &[])]).is_ok());
    let e = u.is_met(&a, &[agent("a", &[])]).unwrap_err();
    assert!(e.contains("hostname is 'a'"), "{e}");
    assert!(c(&["@hostname", "UNIQUE"])
        .is_met(&a, &[agent("a", &[])])
        .is_err());
}

#[test]
fn missing_attribute_only_satisfies_unlike() {
    let a = agent("a", &[]);
    assert!(c(&["rack", "UNIQUE"]).is_met(&a, &[]).is_err());
    assert!(c(&["rack", "LIKE", ".*"]).is_met(&a, &[]).is_err());
    assert!(c(&["rack", "UNLIKE", ".*"]).is_met(&a, &[]).is_ok());
    assert!(c(&["rack", "IS", "x"]).is_met(&a, &[]).is_err());
}

#[test]
fn cluster_with_and_without_value() {
    let fixed = c(&["rack", "CLUSTER", "r1"]);
    assert!(fixed.is_met(&rack("a", "r1"), &[]).is_ok());
    assert!(fixed.is_met(&rack("a", "r2"), &[]).is_err());
    let follow = c(&["rack", "CLUSTER"]);
    assert!(follow.is_met(&rack("a", "r2"), &[]).is_ok());
    assert!(follow.is_met(&rack("a", "r2"), &[rack("b", "r2")]).is_ok());
    assert!(follow.is_met(&rack("a", "r1"), &[rack("b", "r2")]).is_err());
}

#[test]
fn group_by_spreads_evenly() {
    let g = c(&["rack", "GROUP_BY"]);
    let placed = [rack("a", "r1"), rack("b", "r1"), rack("c", "r2")];
    assert!(
        g.is_met(&rack("x", "r2"), &placed).is_ok(),
        "smallest group"
    );
    assert!(
        g.is_met(&rack("x", "r1"), &placed).is_err(),
        "largest group"
    );
    assert!(g.is_met(&rack("x", "r3"), &placed).is_ok(), "new group");
    // With a minimum of 3 groups, an existing group is refused until 3 exist.
    let g3 = c(&["rack", "GROUP_BY", "3"]);
    let placed = [rack("a", "r1"), rack("c", "r2")];
    assert!(g3.is_met(&rack("x", "r1"), &placed).is_err());
    assert!(g3.is_met(&rack("x", "r3"), &placed).is_ok());
}

#[test]
fn like_unlike_are_anchored() {
    let like = c(&["rack", "LIKE", "r[12]"]);
    assert!(like.is_met(&rack("a", "r1"), &[]).is_ok());
    assert!(like.is_met(&rack("a", "r12"), &[]).is_err());
    let unlike = c(&["hostname", "UNLIKE", "bad-.*"]);
    assert!(unlike.is_met(&agent("bad-1", &[]), &[]).is_err());
    assert!(unlike.is_met(&agent("good-1", &[]), &[]).is_ok());
}

#[test]
fn max_per_counts_instances_per_value() {
    let m = c(&["rack", "MAX_PER", "2"]);
    assert!(m.is_met(&rack("x", "r1"), &[rack("a", "r1")]).is_ok());
    let e = m
        .is_met(&rack("x", "r1"), &[rack("a", "r1"), rack("b", "r1")])
        .unwrap_err();
    assert!(e.contains("max 2"), "{e}");
    assert!(m
        .is_met(&rack("x", "r2"), &[rack("a", "r1"), rack("b", "r1")])
        .is_ok());
}

#[test]
fn is_compares_text_and_scalars() {
    assert!(c(&["rack", "IS", "r1"])
        .is_met(&rack("a", "r1"), &[])
        .is_ok());
    assert!(c(&["rack", "IS", "r1"])
        .is_met(&rack("a", "r2"), &[])
        .is_err());
    let cores = agent("a", &[("cores", AttrValue::Scalar(4.0))]);
    assert!(c(&["cores", "IS", "4"]).is_met(&cores, &[]).is_ok());
    assert!(c(&["cores", "IS", "4.0"]).is_met(&cores, &[]).is_ok());
    assert!(c(&["cores", "IS", "5"]).is_met(&cores, &[]).is_err());
    assert!(c(&["cores", "LIKE", "4"]).is_met(&cores, &[]).is_ok());
}

#[test]
fn region_and_zone_fields() {
    let a = agent("a", &[]);
    assert!(c(&["@region", "IS", "eu"]).is_met(&a, &[]).is_ok());
    assert!(c(&["@zone", "UNIQUE"])
        .is_met(&a, &[agent("a", &[])])
        .is_err());
    let no_domain = AgentInfo {
        hostname: "n".into(),
        ..Default::default()
    };
    assert!(c(&["@zone", "UNIQUE"]).is_met(&no_domain, &[]).is_err());
}

#[test]
fn check_reports_the_first_unmet_constraint() {
    let cs = [c(&["hostname", "UNIQUE"]), c(&["rack", "IS", "r1"])];
    assert!(check(&cs, &rack("a", "r1"), &[rack("b", "r1")]).is_ok());
    let unmet = check(&cs, &rack("a", "r2"), &[]).unwrap_err();
    assert_eq!(unmet.constraint, cs[1]);
    assert_eq!(
        unmet.to_string(),
        "constraint [rack, IS, r1] not satisfied: rack is 'r2', not 'r1'"
    );
}
