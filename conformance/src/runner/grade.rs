//! Grading: a case's evidence judged obligation by obligation into verdicts, a missed
//! expectation blamed on the stage the client stalled at or on a broken prerequisite.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::{self, Evidence, Met, Outcome};
use crate::obligations::{Level, ObligationId};

/// The grade of one obligation in one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// Kept, with the evidence.
    Pass(String),
    /// A MUST broken.
    Fail(String),
    /// A SHOULD broken.
    Warn(String),
    Skipped(String),
}

impl Verdict {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pass(_) => "pass",
            Self::Fail(_) => "fail",
            Self::Warn(_) => "warn",
            Self::Skipped(_) => "skipped",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Pass(r) | Self::Fail(r) | Self::Warn(r) | Self::Skipped(r) => r,
        }
    }

    pub fn is_broken(&self) -> bool {
        matches!(self, Self::Fail(_) | Self::Warn(_))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub obligation: ObligationId,
    #[serde(flatten)]
    pub verdict: Verdict,
}

fn verdict(id: ObligationId, outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Kept(why) => Verdict::Pass(why),
        Outcome::NotObservable(reason) => Verdict::Skipped(format!("not observable: {reason}")),
        Outcome::Broken(reason) => match id.level() {
            Level::Should => Verdict::Warn(reason),
            Level::Must | Level::MustNot => Verdict::Fail(reason),
        },
    }
}

/// The stage of the protocol a client never got past, if any: the obligation that stage
/// serves and what happened. A timed-out expectation is blamed on it rather than on the
/// obligation it serves (a client without `X-Host` breaks AUTH-1, not fifteen others).
fn stall_point(e: &Evidence) -> Option<(ObligationId, String)> {
    use mock_server::http_log::Endpoint;
    if e.starts().is_empty() {
        return None;
    }
    let armed = |status: u16| status == 429 || status >= 500;
    let stage = |endpoint: Endpoint, obligation: ObligationId, what: &str| {
        let calls = e.http_of(endpoint);
        let ok = if endpoint == Endpoint::WebSocket {
            101
        } else {
            200
        };
        if calls.is_empty() {
            return Some((obligation, format!("the client never {what}")));
        }
        if calls.iter().any(|c| c.status == ok) {
            return None;
        }
        let last = calls.last()?;
        let blamed = if armed(last.status) && endpoint != Endpoint::WebSocket {
            ObligationId::Auth5
        } else {
            obligation
        };
        (last.status != 503).then(|| {
            (
                blamed,
                format!(
                    "every attempt to {what} was refused (last: {} {})",
                    last.status,
                    last.error.as_deref().unwrap_or_default()
                ),
            )
        })
    };
    stage(
        Endpoint::AccessToken,
        ObligationId::Auth1,
        "got an access token",
    )
    .or_else(|| stage(Endpoint::Sessions, ObligationId::Auth2, "created a session"))
    .or_else(|| stage(Endpoint::WebSocket, ObligationId::Ws1, "opened the socket"))
    .or_else(|| {
        let joined = e
            .sessions
            .first()
            .is_some_and(|s| !s.sent_of(checks::JOIN).is_empty());
        (!joined).then(|| (ObligationId::Ws3, "the client never joined".to_owned()))
    })
}

/// Obligations whose failure leaves another without evidence: a client that never resumes its
/// session after a drop (RC-1) cannot run out of attempts (RC-4), back off (RC-3), show what
/// the session said after the drop, or survive an error only the replay carried (ERR-1); one
/// that ignores batches (MSG-1) cannot show what only a batch carried, beside an unknown event
/// (ERR-2) or not, an end included (UX-4); one that assembles streams wrongly (MSG-4) cannot show
/// the conversation (MSG-3).
fn prerequisites(of: ObligationId) -> &'static [ObligationId] {
    use ObligationId::{Err1, Err2, Msg1, Msg3, Msg4, Rc1, Rc3, Rc4, Ux4};
    match of {
        Rc3 | Rc4 | Msg1 | Err1 => &[Rc1],
        Msg4 | Err2 | Ux4 => &[Rc1, Msg1],
        Msg3 => &[Rc1, Msg1, Msg4],
        _ => &[],
    }
}

/// Grades every obligation the case checks, plus the one a missed expectation blames.
pub fn grade(e: &Evidence) -> Vec<Finding> {
    let mut outcomes: BTreeMap<ObligationId, Outcome> = e
        .case
        .checks
        .iter()
        .map(|id| (*id, checks::judge(*id, e)))
        // The kit's own additions speak only where the case left them evidence.
        .filter(|(id, outcome)| {
            !(e.case.added_checks.contains(id) && matches!(outcome, Outcome::NotObservable(_)))
        })
        .collect();
    let stalled = stall_point(e);
    // A client that gave up its socket for good mid-conversation (ERR-1's or ERR-2's to say
    // why) shows nothing after: what it then never showed is theirs.
    let quit = e
        .conversation_session()
        .and_then(|s| e.client_quit_at(s))
        .and_then(|at| {
            [ObligationId::Err1, ObligationId::Err2]
                .into_iter()
                .find(|id| matches!(outcomes.get(id), Some(Outcome::Broken(_))))
                .map(|id| (at, id))
        });
    for missed in e
        .expectations
        .iter()
        .filter(|x| matches!(x.met, Met::TimedOut(_)))
    {
        let gave_up = quit.filter(|(at, _)| matches!(missed.met, Met::TimedOut(t) if *at < t));
        let (blamed, why) = match (&stalled, gave_up) {
            (Some((stage, why)), _) => (*stage, why.clone()),
            (None, Some((_, id))) => (id, format!("the app never showed {}", missed.what)),
            (None, None) => {
                let own_broken = matches!(outcomes.get(&missed.serves), Some(Outcome::Broken(_)));
                let before = prerequisites(missed.serves)
                    .iter()
                    .copied()
                    .find(|p| !own_broken && matches!(outcomes.get(p), Some(Outcome::Broken(_))));
                (
                    before.unwrap_or(missed.serves),
                    format!("the app never showed {}", missed.what),
                )
            }
        };
        let entry = outcomes
            .entry(blamed)
            .or_insert_with(|| checks::judge(blamed, e));
        *entry = match entry.clone() {
            Outcome::Broken(reason) if reason.contains(&why) => Outcome::Broken(reason),
            Outcome::Broken(reason) => Outcome::Broken(format!("{reason}; {why}")),
            _ => Outcome::Broken(why),
        };
    }
    outcomes
        .into_iter()
        .map(|(id, outcome)| Finding {
            obligation: id,
            verdict: verdict(id, outcome),
        })
        .collect()
}
