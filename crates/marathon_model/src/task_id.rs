//! Task and instance ids (marathon-api.md §5 "Task ids").
//!
//! Current form: `<safeId>.instance-<uuid>._app.<n>`; the instance id is the part before
//! `._app`, `n` the launch incarnation. Pre-1.4 form: `<safeId>.<uuid>` (accepted when
//! parsing, e.g. in kill calls); Marathon names the instance of such a task
//! `<safeId>.marathon-<uuid>`, which is accepted too.
//!
//! The app id is recovered from the safe id by turning `_` back into `/`. This is
//! exact: `_` is not allowed in id segments (§2), so no app id contains one.
//!
//! Randomness comes from the caller: [`TaskId::new`] takes any [`Uuid`]. Marathon uses
//! time-based (v1) uuids; [`uuid_v1`] builds one from a passed-in time, clock sequence
//! and node so callers can keep that shape without this crate reading a clock.

use std::fmt;

use uuid::Uuid;

use crate::id::PathId;
use crate::time::Timestamp;

const INSTANCE_MARKER: &str = ".instance-";
const LEGACY_INSTANCE_MARKER: &str = ".marathon-";
const INCARNATION_MARKER: &str = "._app.";
/// 100 ns intervals between 1582-10-15 (the v1 epoch) and 1970-01-01.
const GREGORIAN_OFFSET_100NS: u64 = 0x01B2_1DD2_1381_4000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskIdError {
    #[error("Task id '{0}' has no instance uuid")]
    NoUuid(String),
    #[error("Task id '{0}' has an invalid incarnation")]
    BadIncarnation(String),
    #[error("Task id '{0}' does not name a valid app id")]
    BadAppId(String),
}

/// An instance: the app and the uuid shared by every incarnation of its task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId {
    pub app_id: PathId,
    pub uuid: Uuid,
}

impl InstanceId {
    pub fn new(app_id: PathId, uuid: Uuid) -> InstanceId {
        InstanceId { app_id, uuid }
    }

    /// Parse `<safeId>.instance-<uuid>` (or `<safeId>.marathon-<uuid>`).
    pub fn parse(s: &str) -> Result<InstanceId, TaskIdError> {
        let (safe, uuid) = [INSTANCE_MARKER, LEGACY_INSTANCE_MARKER]
            .iter()
            .find_map(|m| s.rfind(m).map(|i| (&s[..i], &s[i + m.len()..])))
            .ok_or_else(|| TaskIdError::NoUuid(s.to_string()))?;
        let uuid = Uuid::parse_str(uuid).map_err(|_| TaskIdError::NoUuid(s.to_string()))?;
        let app_id =
            PathId::from_safe_id(safe).map_err(|_| TaskIdError::BadAppId(s.to_string()))?;
        Ok(InstanceId { app_id, uuid })
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{INSTANCE_MARKER}{}",
            self.app_id.safe_id(),
            self.uuid.hyphenated()
        )
    }
}

/// A task id: an instance and its incarnation (`None` for the pre-1.4 form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub instance: InstanceId,
    pub incarnation: Option<u32>,
}

impl TaskId {
    /// `<safeId>.instance-<uuid>._app.<incarnation>`.
    pub fn new(app_id: PathId, uuid: Uuid, incarnation: u32) -> TaskId {
        TaskId {
            instance: InstanceId::new(app_id, uuid),
            incarnation: Some(incarnation),
        }
    }

    /// The same instance's next launch.
    pub fn next_incarnation(&self) -> TaskId {
        TaskId {
            instance: self.instance.clone(),
            incarnation: Some(self.incarnation.unwrap_or(0) + 1),
        }
    }

    /// The app the task belongs to.
    pub fn app_id(&self) -> &PathId {
        &self.instance.app_id
    }

    /// Parse either form.
    pub fn parse(s: &str) -> Result<TaskId, TaskIdError> {
        if let Some(i) = s.rfind(INCARNATION_MARKER) {
            let n = &s[i + INCARNATION_MARKER.len()..];
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TaskIdError::BadIncarnation(s.to_string()));
            }
            let n: u32 = n
                .parse()
                .map_err(|_| TaskIdError::BadIncarnation(s.to_string()))?;
            let instance = InstanceId::parse(&s[..i])?;
            return Ok(TaskId {
                instance,
                incarnation: Some(n),
            });
        }
        if s.contains(INSTANCE_MARKER) || s.contains(LEGACY_INSTANCE_MARKER) {
            // An instance id without incarnation: not a task id.
            return Err(TaskIdError::BadIncarnation(s.to_string()));
        }
        // Pre-1.4: `<safeId>.<uuid>`; a uuid has no dots, so the last dot splits.
        let (safe, uuid) = s
            .rsplit_once('.')
            .ok_or_else(|| TaskIdError::NoUuid(s.to_string()))?;
        let uuid = Uuid::parse_str(uuid).map_err(|_| TaskIdError::NoUuid(s.to_string()))?;
        let app_id =
            PathId::from_safe_id(safe).map_err(|_| TaskIdError::BadAppId(s.to_string()))?;
        Ok(TaskId {
            instance: InstanceId { app_id, uuid },
            incarnation: None,
        })
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.incarnation {
            Some(n) => write!(f, "{}{INCARNATION_MARKER}{n}", self.instance),
            None => write!(
                f,
                "{}.{}",
                self.instance.app_id.safe_id(),
                self.instance.uuid.hyphenated()
            ),
        }
    }
}

/// A version-1 (time-based) uuid from a time, a 14-bit clock sequence and a 48-bit
/// node id, all supplied by the caller. Times before 1582 are clamped.
pub fn uuid_v1(now: Timestamp, clock_seq: u16, node: [u8; 6]) -> Uuid {
    let ticks = (now.millis().max(-12_219_292_800_000) as i128 * 10_000
        + GREGORIAN_OFFSET_100NS as i128)
        .clamp(0, (1i128 << 60) - 1) as u64;
    let time_low = (ticks & 0xffff_ffff) as u32;
    let time_mid = ((ticks >> 32) & 0xffff) as u16;
    let time_hi = ((ticks >> 48) & 0x0fff) as u16 | 0x1000;
    let d4 = [
        ((clock_seq >> 8) & 0x3f) as u8 | 0x80,
        (clock_seq & 0xff) as u8,
        node[0],
        node[1],
        node[2],
        node[3],
        node[4],
        node[5],
    ];
    Uuid::from_fields(time_low, time_mid, time_hi, &d4)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "5f0c2a1e-07b3-11ef-9a8e-0242ac110002";

    #[test]
    fn current_form_round_trips() {
        let s = format!("prod_web.instance-{U}._app.1");
        let t = TaskId::parse(&s).unwrap();
        assert_eq!(t.app_id().to_string(), "/prod/web");
        assert_eq!(t.incarnation, Some(1));
        assert_eq!(t.instance.to_string(), format!("prod_web.instance-{U}"));
        assert_eq!(t.to_string(), s);
        assert_eq!(
            t.next_incarnation().to_string(),
            format!("prod_web.instance-{U}._app.2")
        );
        let built = TaskId::new(
            PathId::parse("/prod/web").unwrap(),
            Uuid::parse_str(U).unwrap(),
            1,
        );
        assert_eq!(built, t);
    }

    #[test]
    fn dotted_app_names_survive() {
        let s = format!("my.app_v1.instance-{U}._app.3");
        let t = TaskId::parse(&s).unwrap();
        assert_eq!(t.app_id().to_string(), "/my.app/v1");
        assert_eq!(t.to_string(), s);
    }

    #[test]
    fn legacy_forms_are_accepted() {
        let t = TaskId::parse(&format!("hello2.{U}")).unwrap();
        assert_eq!(t.app_id().to_string(), "/hello2");
        assert_eq!(t.incarnation, None);
        assert_eq!(t.to_string(), format!("hello2.{U}"));
        let t = TaskId::parse(&format!("a_b.marathon-{U}._app.1")).unwrap();
        assert_eq!(t.app_id().to_string(), "/a/b");
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "".to_string(),
            "hello".to_string(),
            "hello.notauuid".to_string(),
            format!("hello.instance-{U}"),
            format!("hello.instance-{U}._app."),
            format!("hello.instance-{U}._app.x"),
            format!("hello.instance-{U}._app.99999999999"),
            format!("Hello.instance-{U}._app.1"),
            format!(".instance-{U}._app.1"),
            format!("a__b.{U}"),
            "._app.1".to_string(),
        ] {
            assert!(TaskId::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v1_uuids_encode_the_time() {
        let u = uuid_v1(
            Timestamp(1_714_564_800_123),
            0x1a8e,
            [2, 0x42, 0xac, 0x11, 0, 2],
        );
        assert_eq!(u.get_version_num(), 1);
        let s = u.hyphenated().to_string();
        assert!(s.ends_with("-9a8e-0242ac110002"), "{s}");
        // Two uuids 1 ms apart differ only in the time fields.
        let later = uuid_v1(
            Timestamp(1_714_564_800_124),
            0x1a8e,
            [2, 0x42, 0xac, 0x11, 0, 2],
        );
        assert_ne!(u, later);
        assert_eq!(u.as_bytes()[8..], later.as_bytes()[8..]);
        let _ = uuid_v1(Timestamp(i64::MIN), 0, [0; 6]);
        let _ = uuid_v1(Timestamp(i64::MAX), u16::MAX, [0xff; 6]);
    }
}
