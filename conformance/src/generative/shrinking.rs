//! Shrinking a failing session to the fewest beats that still break the same obligations.

use std::collections::BTreeSet;

use crate::obligations::ObligationId;

use super::Session;

/// What a failure is, for shrinking: the obligations a result broke.
pub fn broken(result: &crate::runner::CaseResult) -> BTreeSet<ObligationId> {
    result
        .findings
        .iter()
        .filter(|f| f.verdict.is_broken())
        .map(|f| f.obligation)
        .collect()
}

/// Shrinks a failing session: drops beats one at a time (never the last, its ending) while
/// `still_fails` holds for what is left, until no single beat can go. Returns the beats kept
/// (indices into `session.beats`), at most `budget` runs spent.
pub async fn shrink<F, Fut>(session: &Session, budget: usize, still_fails: F) -> Vec<usize>
where
    F: Fn(Session) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut keep: Vec<usize> = (0..session.beats.len()).collect();
    let mut spent = 0;
    let mut changed = true;
    while changed && spent < budget {
        changed = false;
        let mut at = 0;
        while at + 1 < keep.len() && spent < budget {
            let mut fewer = keep.clone();
            fewer.remove(at);
            spent += 1;
            if still_fails(session.only(&fewer)).await {
                keep = fewer;
                changed = true;
            } else {
                at += 1;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shrinking_keeps_exactly_the_beats_a_failure_needs() {
        let session = Session::generate(11, 0);
        let needed = session.beats.len() / 2;
        let kept = shrink(&session, 100, |s| {
            let needs = session.beats[needed].clone();
            async move { s.beats.contains(&needs) }
        })
        .await;
        let last = session.beats.len() - 1;
        let wanted: Vec<usize> = if needed == last {
            vec![last]
        } else {
            vec![needed, last]
        };
        // A beat equal to the needed one may stand in for it.
        assert!(kept.len() == wanted.len(), "{kept:?} vs {wanted:?}");
        assert!(kept.contains(&last));
    }
}
