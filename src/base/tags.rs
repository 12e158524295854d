//! The tag schema (docs/contracts.md §7): who last changed a resource, when, and with which CARP
//! priority; and CARP's rule for which member is preferred.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::base::time::{Millis, format_rfc3339_millis, parse_rfc3339};

pub const MODIFIED: &str = "awsha:modified";
pub const ADVBASE: &str = "awsha:advbase";
pub const ADVSKEW: &str = "awsha:advskew";
pub const INSTANCE: &str = "awsha:instance";
pub const VHID: &str = "awsha:vhid";
pub const ALL_KEYS: [&str; 5] = [MODIFIED, ADVBASE, ADVSKEW, INSTANCE, VHID];

/// A CARP member's priority: smaller `advbase × 256 + advskew` wins; ties go to the smaller
/// instance id, compared as plain strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priority {
    pub advbase: u32,
    pub advskew: u32,
    pub instance: String,
}

impl Priority {
    fn key(&self) -> (u64, &str) {
        (
            u64::from(self.advbase) * 256 + u64::from(self.advskew),
            self.instance.as_str(),
        )
    }

    /// `Less` means `self` is preferred (higher priority) over `other`.
    pub fn compare(&self, other: &Priority) -> Ordering {
        self.key().cmp(&other.key())
    }

    pub fn is_preferred_over(&self, other: &Priority) -> bool {
        self.compare(other) == Ordering::Less
    }
}

/// What one awsha run writes on every resource it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub modified: Millis,
    pub advbase: u32,
    pub advskew: u32,
    pub instance: String,
    pub vhid: String,
}

impl Stamp {
    pub fn to_tags(&self) -> Vec<(&'static str, String)> {
        vec![
            (MODIFIED, format_rfc3339_millis(self.modified)),
            (ADVBASE, self.advbase.to_string()),
            (ADVSKEW, self.advskew.to_string()),
            (INSTANCE, self.instance.clone()),
            (VHID, self.vhid.clone()),
        ]
    }

    /// Reads a resource's tags back; `None` unless all five are present and well-formed, because
    /// a half-written or hand-edited set cannot be trusted for a priority decision.
    pub fn from_tags(tags: &HashMap<String, String>) -> Option<Stamp> {
        Some(Stamp {
            modified: parse_rfc3339(tags.get(MODIFIED)?)?,
            advbase: tags.get(ADVBASE)?.parse().ok()?,
            advskew: tags.get(ADVSKEW)?.parse().ok()?,
            instance: tags.get(INSTANCE)?.clone(),
            vhid: tags.get(VHID)?.clone(),
        })
    }

    pub fn priority(&self) -> Priority {
        Priority {
            advbase: self.advbase,
            advskew: self.advskew,
            instance: self.instance.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(advbase: u32, advskew: u32, instance: &str) -> Priority {
        Priority {
            advbase,
            advskew,
            instance: instance.into(),
        }
    }

    #[test]
    fn carp_priority_rule() {
        assert!(p(1, 0, "i-b").is_preferred_over(&p(1, 100, "i-a")));
        assert!(
            p(1, 254, "i-b").is_preferred_over(&p(2, 0, "i-a")),
            "advbase weighs 256 skews"
        );
        assert!(
            p(1, 0, "i-a").is_preferred_over(&p(1, 0, "i-b")),
            "tie: smaller instance id"
        );
        assert!(!p(1, 0, "i-a").is_preferred_over(&p(1, 0, "i-a")));
    }

    #[test]
    fn stamp_round_trips_and_refuses_partial_sets() {
        let s = Stamp {
            modified: 1_795_687_200_123,
            advbase: 1,
            advskew: 100,
            instance: "i-0abc".into(),
            vhid: "wan@1".into(),
        };
        let tags: HashMap<String, String> = s.to_tags().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(tags[MODIFIED], "2026-11-26T10:00:00.123Z");
        assert_eq!(Stamp::from_tags(&tags), Some(s));
        let mut partial = tags.clone();
        partial.remove(ADVSKEW);
        assert_eq!(Stamp::from_tags(&partial), None);
        let mut bad = tags;
        bad.insert(MODIFIED.into(), "yesterday".into());
        assert_eq!(Stamp::from_tags(&bad), None);
    }
}
