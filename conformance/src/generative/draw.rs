//! Drawing a session from a seed: the settings, the middle beats (rotating through every kind
//! across a run), then a restart, a phase and an ending from the run's plan.

use crate::params::Draw;

use super::{Beat, Pending, RestFailures, Session, Settings};

const ERRORS: &[&str] = &["high_load", "trouble_responding", "streaming_error"];
/// How the sockets go: dropped without a close frame, or closed with a code that asks the
/// client to come back (spec Appendix A).
const CUTS: [Option<u16>; 4] = [None, Some(1001), Some(1011), Some(4002)];
const REPLAY_FAULTS: &[&str] = &[
    "split_next_replay",
    "reverse_next_replay",
    "alternate_shape_next_replay",
    "drop_next_replay_after",
];

/// The beats that can come anywhere before a handoff or an ending, in the order sessions of
/// one run rotate through them (so a handful of sessions meets every kind).
fn middle_beat(kind: usize, d: &mut Draw, streaming: bool) -> Beat {
    match kind % MIDDLE_KINDS {
        0 => Beat::Quiet,
        1 => Beat::Think {
            pause_ms: d.within(300, 600),
            think_ms: d.within(600, 1_000),
        },
        2 if streaming => Beat::Stream {
            pieces: d.within(2, 6),
            swapped: d.one_in(2),
            second_first: d.one_in(2),
        },
        3 => Beat::Duplicate,
        4 => Beat::Swap,
        5 => Beat::NullSequence,
        6 => Beat::HistoryAgain,
        7 => Beat::ResendPrevious {
            back: d.within(1, 3),
        },
        8 => Beat::UnknownLive,
        9 => Beat::UnknownFields,
        10 => Beat::AgentError {
            kind: ERRORS[d.below(2) as usize],
        },
        11 => Beat::Languages {
            swapped: d.one_in(2),
            again: d.one_in(2),
        },
        12 => Beat::Suggestions {
            tap: d.below(2) as usize,
        },
        13 => Beat::UserTyping,
        14 => Beat::Oversized {
            frame_only: d.one_in(2),
        },
        15 => Beat::LostOnce,
        16 => Beat::Close {
            code: CUTS[d.below(4) as usize],
            only_in_replay: d.one_in(2),
            replay: (!d.one_in(3)).then(|| REPLAY_FAULTS[d.below(4) as usize]),
            typed_while_down: d.one_in(2),
        },
        17 if streaming => {
            let pieces = d.within(4, 7);
            Beat::MidStreamDrop {
                pieces,
                drop_after: d.within(1, pieces - 2),
            }
        }
        18 => Beat::EchoOnlyInReplay {
            cut: CUTS[d.below(4) as usize],
        },
        19 => Beat::UnknownInReplay {
            cut: CUTS[d.below(4) as usize],
            error: d.one_in(2),
        },
        20 => Beat::RefusedReconnects {
            refusals: d.within(1, 2) as u32,
        },
        _ => Beat::Reply,
    }
}

/// How many kinds of middle beat there are.
const MIDDLE_KINDS: usize = 22;
/// The kinds of middle beat only a streaming session has.
const STREAMING_KINDS: [usize; 2] = [2, 17];

impl Session {
    /// The `index`-th session of a run with `run_seed`: its seed carries the index in its low
    /// byte, so consecutive sessions start from different beats, and the seed alone
    /// reproduces the session.
    pub fn generate(run_seed: u64, index: u64) -> Self {
        let mixed = run_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 24;
        Self::from_seed((mixed << 8) | (index & 0xFF))
    }

    /// The session of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let rotation = seed & 0xFF;
        let mut d = Draw::from_seed(seed ^ 0x6E4E_5A71_7E5E_5510);
        let start = (rotation as usize * 5) % MIDDLE_KINDS;
        let count = d.within(4, 6) as usize;
        // A session whose turn it is for a streamed beat streams.
        let streams = (start..start + count).any(|k| STREAMING_KINDS.contains(&(k % MIDDLE_KINDS)));
        let streaming = streams || d.one_in(2);
        let mut beats = Vec::new();
        for k in 0..count {
            beats.push(middle_beat(start + k, &mut d, streaming));
        }
        beats.push(middle_beat(
            d.below(MIDDLE_KINDS as u64) as usize,
            &mut d,
            streaming,
        ));
        // Heartbeats are judged on connections that stay up a few intervals.
        if !beats.contains(&Beat::Quiet) && d.one_in(2) {
            beats.insert(d.below(beats.len() as u64) as usize, Beat::Quiet);
        }
        // Where the session falls in its run's plan: twelve consecutive sessions meet every
        // ending, every phase and every kind of restart.
        let slot = (seed >> 8).wrapping_add(rotation) % PLAN;
        if slot.is_multiple_of(3) {
            let pending = [Pending::Nothing, Pending::Unechoed, Pending::Unsent];
            beats.push(Beat::Restart {
                pending: pending[(slot / 3 % 3) as usize],
            });
        }
        let (phase, ending) = finale(slot, &mut d);
        beats.extend(phase);
        beats.push(ending);
        let settings = Settings {
            streaming,
            heartbeat_seconds: d.within(2, 6),
            max_attempts: d.within(3, 4),
            hold_back_ms: if d.one_in(2) { 0 } else { d.within(300, 2_500) },
            rest_failures: rest_failures(slot, &mut d),
            max_message_size: 1024 * d.within(24, 96),
            // Sessions whose ending the user or the agent brings, every other one.
            close_at_end: slot.is_multiple_of(2),
            join_interrupted: slot % 4 == 1,
        };
        Self {
            seed,
            settings,
            beats,
        }
    }
}

/// A bad start for four sessions of the plan: a 429 on one REST call, then one or two 500s on
/// the other, each way round.
fn rest_failures(slot: u64, d: &mut Draw) -> Option<RestFailures> {
    let (sessions_first, server_errors) = match slot {
        1 => (false, 1),
        4 => (true, 2),
        7 => (false, 2),
        10 => (true, 1),
        _ => return None,
    };
    Some(RestFailures {
        retry_after: d.within(1, 4),
        server_errors,
        sessions_first,
    })
}

/// Sessions in a run's plan ([`finale`]): twelve consecutive sessions meet all of it.
const PLAN: u64 = 12;

/// The phase and the ending of the session in `slot` of its run's plan: each ending once
/// without a phase (most need an agent to the end), then each phase, whose endings it allows.
fn finale(slot: u64, d: &mut Draw) -> (Option<Beat>, Beat) {
    let handoff = |d: &mut Draw, last_while_down| Beat::Handoff {
        queue: d.within(1, 3) as u32,
        turns: d.within(1, 2) as u32,
        last_while_down,
    };
    match slot {
        0 => (None, Beat::UserEnds),
        1 => (None, Beat::NaturalEnd { during_drop: false }),
        2 => (None, Beat::NaturalEnd { during_drop: true }),
        3 => (None, Beat::GiveUp),
        4 => (None, Beat::TokenExpired),
        5 => (None, Beat::SessionExpired),
        6 => (None, Beat::LostForever),
        7 => {
            let phase = handoff(d, true);
            (
                Some(phase),
                Beat::NaturalEnd {
                    during_drop: d.one_in(2),
                },
            )
        }
        8 => (Some(Beat::ClientHandoff), Beat::UserEnds),
        9 => (Some(Beat::HandoffFails { timeout: false }), Beat::UserEnds),
        10 => (Some(Beat::HandoffFails { timeout: true }), Beat::UserEnds),
        _ => {
            let last_while_down = d.one_in(2);
            (Some(handoff(d, last_while_down)), Beat::UserEnds)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn twelve_consecutive_sessions_of_any_run_meet_every_ending_phase_and_restart() {
        for run in [1, 2, 3, 99, 12_345] {
            let mut met = BTreeSet::new();
            for index in 0..PLAN {
                for beat in Session::generate(run, index).beats {
                    let name = match beat {
                        Beat::Handoff { .. } => "handoff".to_owned(),
                        Beat::HandoffFails { timeout } => format!("handoff fails {timeout}"),
                        Beat::NaturalEnd { during_drop } => format!("natural end {during_drop}"),
                        Beat::Restart { pending } => format!("restart {pending:?}"),
                        Beat::ClientHandoff
                        | Beat::UserEnds
                        | Beat::GiveUp
                        | Beat::TokenExpired
                        | Beat::SessionExpired
                        | Beat::LostForever => beat.label(),
                        _ => continue,
                    };
                    met.insert(name);
                }
            }
            // Seven endings, four phases, three restarts.
            assert_eq!(met.len(), 14, "run {run}: {met:?}");
        }
    }
}
