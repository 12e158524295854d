//! The reconcile rules (docs/contracts.md §9.3) for one drifted resource: in sync, leave a fresh
//! change alone, repair, reclaim from a lower-priority member, or defer to a higher-priority one.
//! Pure: the facts come in, a verdict goes out.

use crate::base::tags::{Priority, Stamp};
use crate::base::time::Millis;

/// What docs/contracts.md §9.3 decides for one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    InSync,
    /// Changed less than the grace time ago: the other member may be mid-failover, and EC2 is
    /// eventually consistent. Look again next run.
    Recent,
    /// Drift by nobody, by this node, or older than this node's takeover: just fix it.
    Repair,
    /// Split brain with a lower-priority member: take it back.
    Reclaim,
    /// Split brain with a higher-priority member: leave it.
    Defer,
}

/// The rules of docs/contracts.md §9.3 for one resource. `writer`: the resource's last awsha writer;
/// `takeover`: when this node took the VHID over (T).
pub fn judge(
    drifted: bool,
    writer: Option<&Stamp>,
    me: &Priority,
    takeover: Option<Millis>,
    now: Millis,
    grace_ms: Millis,
) -> Verdict {
    if !drifted {
        return Verdict::InSync;
    }
    let Some(w) = writer else { return Verdict::Repair };
    if now - w.modified < grace_ms {
        return Verdict::Recent;
    }
    if w.instance == me.instance {
        return Verdict::Repair;
    }
    if let Some(t) = takeover
        && w.modified < t
    {
        return Verdict::Repair;
    }
    if me.is_preferred_over(&w.priority()) {
        Verdict::Reclaim
    } else {
        Verdict::Defer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_795_687_200_000;
    const GRACE: Millis = 15_000;

    fn me() -> Priority {
        Priority {
            advbase: 1,
            advskew: 0,
            instance: "i-a".into(),
        }
    }
    fn w(instance: &str, advskew: u32, modified: Millis) -> Stamp {
        Stamp {
            modified,
            advbase: 1,
            advskew,
            instance: instance.into(),
            vhid: "wan@1".into(),
        }
    }

    #[test]
    fn in_sync_is_in_sync_whoever_wrote_it() {
        assert_eq!(
            judge(false, Some(&w("i-b", 100, NOW)), &me(), None, NOW, GRACE),
            Verdict::InSync
        );
    }

    #[test]
    fn drift_by_nobody_or_by_me_is_repaired() {
        assert_eq!(judge(true, None, &me(), None, NOW, GRACE), Verdict::Repair);
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 60_000)), &me(), None, NOW, GRACE),
            Verdict::Repair
        );
    }

    #[test]
    fn fresh_changes_wait_for_the_next_run() {
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW - 14_999)), &me(), None, NOW, GRACE),
            Verdict::Recent
        );
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW - 15_000)), &me(), None, NOW, GRACE),
            Verdict::Reclaim
        );
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW)), &me(), None, NOW, 0),
            Verdict::Reclaim
        );
    }

    #[test]
    fn a_change_older_than_my_takeover_is_an_incomplete_takeover() {
        // Even from a higher-priority member: it acted before this node took over (it has since
        // died, or this node's failover did not finish).
        let higher = w("i-0", 0, NOW - 120_000);
        let prio_low = Priority {
            advbase: 1,
            advskew: 100,
            instance: "i-b".into(),
        };
        assert_eq!(
            judge(true, Some(&higher), &prio_low, Some(NOW - 60_000), NOW, GRACE),
            Verdict::Repair
        );
    }

    #[test]
    fn split_brain_reclaims_from_lower_and_defers_to_higher() {
        let t = Some(NOW - 60_000);
        assert_eq!(
            judge(true, Some(&w("i-b", 100, NOW - 30_000)), &me(), t, NOW, GRACE),
            Verdict::Reclaim
        );
        let low = Priority {
            advbase: 1,
            advskew: 100,
            instance: "i-b".into(),
        };
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 30_000)), &low, t, NOW, GRACE),
            Verdict::Defer
        );
        // Unknown T counts as split brain too.
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 30_000)), &low, None, NOW, GRACE),
            Verdict::Defer
        );
        // A change exactly at T is after it.
        assert_eq!(
            judge(true, Some(&w("i-a", 0, NOW - 60_000)), &low, t, NOW, GRACE),
            Verdict::Defer
        );
    }

    #[test]
    fn alternating_judgements_converge_without_ping_pong() {
        // A (advskew 0) and B (advskew 100) both claim MASTER: A took over, then B did and wrote.
        let a = me();
        let b = Priority {
            advbase: 1,
            advskew: 100,
            instance: "i-b".into(),
        };
        let (t_a, t_b) = (NOW - 100_000, NOW - 90_000);
        // Round 1, A: resource written by B after A's takeover → split brain, B is lower → reclaim.
        let by_b = w("i-b", 100, t_b);
        assert_eq!(judge(true, Some(&by_b), &a, Some(t_a), NOW, GRACE), Verdict::Reclaim);
        // Round 1, B: now written by A after B's takeover → A is higher → defer.
        let by_a = w("i-a", 0, NOW);
        assert_eq!(
            judge(true, Some(&by_a), &b, Some(t_b), NOW + 20_000, GRACE),
            Verdict::Defer
        );
        // Every later round: A sees it in sync; B keeps deferring.
        assert_eq!(
            judge(false, Some(&by_a), &a, Some(t_a), NOW + 40_000, GRACE),
            Verdict::InSync
        );
        assert_eq!(
            judge(true, Some(&by_a), &b, Some(t_b), NOW + 60_000, GRACE),
            Verdict::Defer
        );
    }
}
