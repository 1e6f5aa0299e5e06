//! Turning the allocator's decisions into offers. The allocator itself is a pure function in the
//! `allocator` crate; this module builds its views from the core's books and records the offers.

use super::*;
use allocator::{AgentView, FrameworkView};
use proto::scheduler::{Offer, Url};

impl Core {
    /// One allocation round: every active agent's free resources may go to one framework (DRF).
    pub fn allocate(&mut self, now: f64) -> Vec<Effect> {
        let mut total = ResourceBag::new();
        let agents: Vec<AgentView> = self
            .agents
            .values()
            .map(|a| {
                let _ = total.add(&a.total);
                AgentView {
                    id: a.id.clone(),
                    hostname: a.info.hostname.clone(),
                    available: a.available(),
                    active: a.active && a.connected,
                }
            })
            .collect();
        let frameworks: Vec<FrameworkView> = self
            .frameworks
            .values()
            .map(|f| {
                // Scalars only: DRF shares are computed from them (`allocator::dominant_share`), and
                // the tasks' scalar total is O(names) to read where their ports' union is not.
                let mut allocated = f.used_scalars();
                for offer_id in &f.offers {
                    if let Some(offer) = self.offers.get(offer_id) {
                        add_scalars(&mut allocated, &offer.resources);
                    }
                }
                FrameworkView {
                    id: f.id.clone(),
                    role: f.role(),
                    allocated,
                    active: f.active && f.connected,
                    suppressed: f.suppressed,
                }
            })
            .collect();
        self.allocation_round += 1;
        let decisions = allocator::allocate(
            &total,
            &agents,
            &frameworks,
            &self.filters,
            now,
            self.allocation_round,
        );
        let mut per_framework: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
        for decision in decisions {
            let offer_id = self.mint_offer_id();
            let Some(agent) = self.agents.get_mut(&decision.agent_id) else {
                continue;
            };
            let _ = agent.offered.add(&decision.resources);
            let Some(framework) = self.frameworks.get_mut(&decision.framework_id) else {
                continue;
            };
            framework.offers.push(offer_id.clone());
            let role = framework.role();
            let (host, port) = split_endpoint(&agent.endpoint);
            per_framework
                .entry(decision.framework_id.clone())
                .or_default()
                .push(Offer {
                    id: offer_id.clone(),
                    framework_id: decision.framework_id.clone(),
                    agent_id: agent.id.clone(),
                    hostname: agent.info.hostname.clone(),
                    url: Some(Url {
                        scheme: "http".into(),
                        address: Address {
                            hostname: Some(agent.info.hostname.clone()),
                            ip: Some(host),
                            port,
                        },
                        path: Some("/slave(1)".into()),
                    }),
                    resources: decision.resources.to_resources(Some(&role)),
                    attributes: agent.info.attributes.clone(),
                    executor_ids: Vec::new(),
                    allocation_info: Some(AllocationInfo { role: Some(role) }),
                });
            self.offers.insert(
                offer_id.clone(),
                OfferRecord {
                    id: offer_id,
                    framework_id: decision.framework_id,
                    agent_id: decision.agent_id,
                    resources: decision.resources,
                    created_at: now,
                },
            );
        }
        per_framework
            .into_iter()
            .map(|(framework_id, offers)| Effect::ToFramework(framework_id, Event::offers(offers)))
            .collect()
    }
}

fn add_scalars(into: &mut ResourceBag, from: &ResourceBag) {
    for name in from.names() {
        if let Some(ResourceValue::Scalar(amount)) = from.get(name) {
            let sum = into.scalar(name) + amount;
            into.set_scalar(name, sum);
        }
    }
}

fn split_endpoint(endpoint: &str) -> (String, u16) {
    match endpoint.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(0)),
        None => (endpoint.to_string(), 0),
    }
}
