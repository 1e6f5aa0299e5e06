//! Ports (marathon-api.md §2 `portDefinitions`, `requirePorts`; §7 "Task environment").
//!
//! Service ports: a `port: 0` definition gets the lowest free port of `--local_port_min..max`
//! when the app is deployed; an update keeps the port the app had at the same index, so service
//! ports are stable across updates (and `change_kind` then sees no spurious change).
//! Host ports: each task gets one host port per definition from the offer's `ports` ranges (the
//! lowest free ones), or exactly the declared ports with `requirePorts`.

use marathon_model::AppDefinition;
use std::collections::BTreeSet;

/// Assigns `port: 0` definitions of `new` (keeping `old`'s ports where it had one at that index).
/// Returns the index of a definition that could not get a port (range exhausted).
pub fn assign_service_ports(
    new: &mut AppDefinition,
    old: Option<&AppDefinition>,
    in_use: &BTreeSet<i64>,
    range: (u32, u32),
) -> Result<(), usize> {
    let mut taken: BTreeSet<i64> = in_use.clone();
    taken.extend(
        new.port_definitions
            .iter()
            .map(|p| p.port)
            .filter(|p| *p != 0),
    );
    for i in 0..new.port_definitions.len() {
        if new.port_definitions[i].port != 0 {
            continue;
        }
        let previous = old
            .and_then(|o| o.port_definitions.get(i))
            .map(|p| p.port)
            .filter(|p| *p != 0 && !taken.contains(p));
        let port = match previous {
            Some(p) => p,
            None => match (range.0 as i64..=range.1 as i64).find(|p| !taken.contains(p)) {
                Some(p) => p,
                None => return Err(i),
            },
        };
        taken.insert(port);
        new.port_definitions[i].port = port;
    }
    Ok(())
}

/// Free port ranges of one offer, consumed as tasks are placed on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortPool {
    ranges: Vec<(u64, u64)>,
}

impl PortPool {
    pub fn new(mut ranges: Vec<(u64, u64)>) -> PortPool {
        ranges.retain(|(b, e)| b <= e);
        ranges.sort();
        PortPool { ranges }
    }

    pub fn contains(&self, port: u64) -> bool {
        self.ranges.iter().any(|(b, e)| *b <= port && port <= *e)
    }

    /// `n` ports (the lowest free), or `required` exactly; `None` when they are not all there.
    /// Nothing is taken unless everything fits.
    pub fn take(&mut self, n: usize, required: Option<&[u64]>) -> Option<Vec<u64>> {
        let picked: Vec<u64> = match required {
            Some(ports) => {
                let unique: BTreeSet<u64> = ports.iter().copied().collect();
                if unique.len() != ports.len() || !ports.iter().all(|p| self.contains(*p)) {
                    return None;
                }
                ports.to_vec()
            }
            None => {
                let mut out = Vec::with_capacity(n);
                'outer: for (b, e) in &self.ranges {
                    for p in *b..=*e {
                        if out.len() == n {
                            break 'outer;
                        }
                        out.push(p);
                    }
                }
                if out.len() < n {
                    return None;
                }
                out
            }
        };
        for p in &picked {
            self.remove(*p);
        }
        Some(picked)
    }

    fn remove(&mut self, port: u64) {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for (b, e) in self.ranges.drain(..) {
            if port < b || port > e {
                out.push((b, e));
                continue;
            }
            if b < port {
                out.push((b, port - 1));
            }
            if port < e {
                out.push((port + 1, e));
            }
        }
        self.ranges = out;
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marathon_model::{PathId, PortDefinition};

    fn app(ports: &[i64]) -> AppDefinition {
        let mut a = AppDefinition::with_defaults(PathId::parse("/a").unwrap(), "*");
        a.port_definitions = ports
            .iter()
            .map(|p| PortDefinition {
                port: *p,
                protocol: "tcp".into(),
                name: None,
                labels: Default::default(),
            })
            .collect();
        a
    }

    #[test]
    fn service_ports_are_lowest_free_and_stable() {
        let mut first = app(&[0, 0]);
        assign_service_ports(&mut first, None, &[10000].into(), (10000, 10010)).unwrap();
        assert_eq!(
            first
                .port_definitions
                .iter()
                .map(|p| p.port)
                .collect::<Vec<_>>(),
            vec![10001, 10002]
        );
        let mut update = app(&[0, 0, 0]);
        assign_service_ports(&mut update, Some(&first), &[10000].into(), (10000, 10010)).unwrap();
        assert_eq!(
            update
                .port_definitions
                .iter()
                .map(|p| p.port)
                .collect::<Vec<_>>(),
            vec![10001, 10002, 10003]
        );
        let mut full = app(&[0]);
        assert_eq!(
            assign_service_ports(&mut full, None, &[5].into(), (5, 5)),
            Err(0)
        );
    }

    #[test]
    fn host_ports_come_from_the_offer() {
        let mut pool = PortPool::new(vec![(31000, 31001), (31005, 31005)]);
        assert_eq!(pool.take(2, None), Some(vec![31000, 31001]));
        assert_eq!(pool.take(2, None), None, "only one left");
        assert_eq!(pool.take(1, Some(&[31004])), None);
        assert_eq!(pool.take(1, Some(&[31005])), Some(vec![31005]));
        assert!(pool.ranges().is_empty());
    }
}
