//! The election rules, as pure functions (mesos-ha.md 2.2): which children of the group's znode are
//! members, who leads (the smallest sequence, whatever its label), and how a leader's data decodes.

use crate::Leader;
use proto::MasterInfo;

/// The label Mesos masters have written since 0.24 (mesos-ha.md 2.2).
pub const MASTER_LABEL: &str = "json.info";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The child's name, e.g. `json.info_0000000007`.
    pub name: String,
    pub label: Option<String>,
    pub sequence: u64,
}

/// A child name as a member: an optional `<label>_` prefix, then an integer sequence. Names whose
/// remainder is not an integer (e.g. `log_replicas`) are not members.
pub fn parse_member(name: &str) -> Option<Member> {
    let (label, digits) = match name.rfind('_') {
        Some(i) => (Some(name[..i].to_string()), &name[i + 1..]),
        None => (None, name),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sequence = digits.parse().ok()?;
    Some(Member {
        name: name.to_string(),
        label,
        sequence,
    })
}

/// The leader among `children`: the member with the smallest sequence.
pub fn leader_of<'a>(children: impl IntoIterator<Item = &'a String>) -> Option<Member> {
    children
        .into_iter()
        .filter_map(|c| parse_member(c))
        .min_by_key(|m| m.sequence)
}

/// The masters among `children`: the `json.info_*` members, lowest sequence first.
pub fn masters_of<'a>(children: impl IntoIterator<Item = &'a String>) -> Vec<Member> {
    let mut masters: Vec<Member> = children
        .into_iter()
        .filter_map(|c| parse_member(c))
        .filter(|m| m.label.as_deref() == Some(MASTER_LABEL))
        .collect();
    masters.sort_by_key(|m| m.sequence);
    masters
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("leader node {0} holds MasterInfo that is not valid JSON: {1}")]
    BadJson(String, String),
    #[error("leader node {0} uses the legacy protobuf encoding, which tepui does not read")]
    Protobuf(String),
    #[error("leader node {0} holds '{1}', not a master@ip:port UPID")]
    BadUpid(String, String),
}

/// Decodes a leader's data by its label: `json.info` is MasterInfo JSON, no label is UPID text
/// `master@ip:port` from very old masters.
pub fn decode_leader(member: &Member, data: &[u8]) -> Result<Leader, DecodeError> {
    match member.label.as_deref() {
        Some(MASTER_LABEL) => {
            let info: MasterInfo = serde_json::from_slice(data)
                .map_err(|e| DecodeError::BadJson(member.name.clone(), e.to_string()))?;
            Ok(Leader {
                endpoint: info.endpoint(),
                info: Some(info),
            })
        }
        Some("info") => Err(DecodeError::Protobuf(member.name.clone())),
        _ => {
            let text = String::from_utf8_lossy(data).trim().to_string();
            match text.strip_prefix("master@") {
                Some(endpoint) if endpoint.contains(':') => Ok(Leader {
                    endpoint: endpoint.to_string(),
                    info: None,
                }),
                _ => Err(DecodeError::BadUpid(member.name.clone(), text)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_sequence_leads_whatever_the_label() {
        let children: Vec<String> = [
            "json.info_0000000009",
            "log_replicas",
            "json.info_0000000007",
            "0000000008",
            "junk_x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let leader = leader_of(&children).unwrap();
        assert_eq!(leader.name, "json.info_0000000007");
        assert_eq!(leader.label.as_deref(), Some("json.info"));
        assert_eq!(leader.sequence, 7);
        assert!(parse_member("log_replicas").is_none());
        assert_eq!(parse_member("0000000003").unwrap().label, None);
        assert!(leader_of(&Vec::<String>::new()).is_none());
        let masters: Vec<String> = masters_of(&children).into_iter().map(|m| m.name).collect();
        assert_eq!(
            masters,
            ["json.info_0000000007", "json.info_0000000009"],
            "json.info members only, by sequence"
        );
    }

    #[test]
    fn decodes_json_and_upid_payloads() {
        let info = MasterInfo::new("id".into(), "10.0.0.11".parse().unwrap(), 5050, "m1".into());
        let member = parse_member("json.info_0000000001").unwrap();
        let leader = decode_leader(&member, &serde_json::to_vec(&info).unwrap()).unwrap();
        assert_eq!(leader.endpoint, "m1:5050");
        let old = parse_member("0000000002").unwrap();
        assert_eq!(
            decode_leader(&old, b"master@10.0.0.1:5050")
                .unwrap()
                .endpoint,
            "10.0.0.1:5050"
        );
        assert!(decode_leader(&member, b"not json").is_err());
        assert!(decode_leader(&parse_member("info_0000000003").unwrap(), b"\x08").is_err());
    }
}
