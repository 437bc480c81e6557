//! Drawing a session from a seed: the settings, the middle beats (rotating through every kind
//! across a run), a handoff phase and an ending.

use crate::params::Draw;

use super::{Beat, Pending, Session, Settings};

const ERRORS: &[&str] = &["high_load", "trouble_responding", "streaming_error"];
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
        },
        12 => Beat::Suggestions {
            tap: d.below(2) as usize,
        },
        13 => Beat::UserTyping,
        14 => Beat::Oversized,
        15 => Beat::LostOnce,
        16 => Beat::Close {
            code: [None, Some(1001), Some(1011), Some(4002)][d.below(4) as usize],
            only_in_replay: d.one_in(2),
            replay: (!d.one_in(3)).then(|| REPLAY_FAULTS[d.below(4) as usize]),
            typed_while_down: false,
        },
        17 if streaming => {
            let pieces = d.within(4, 7);
            Beat::MidStreamDrop {
                pieces,
                drop_after: d.within(1, pieces - 2),
            }
        }
        18 => Beat::EchoOnlyInReplay,
        19 => Beat::UnknownInReplay,
        20 => Beat::RefusedReconnects {
            refusals: d.within(1, 2) as u32,
        },
        _ => Beat::Reply,
    }
}

/// How many kinds of middle beat there are.
const MIDDLE_KINDS: usize = 22;

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
        let streaming = d.one_in(2);
        let mut beats = Vec::new();
        let start = (rotation as usize * 5) % MIDDLE_KINDS;
        let count = d.within(4, 6) as usize;
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
        if d.one_in(3) {
            beats.push(Beat::Restart {
                pending: Pending::Nothing,
            });
        }
        let phase = match d.below(6) {
            0 => Some(Beat::Handoff {
                queue: d.within(1, 3) as u32,
                turns: d.within(1, 2) as u32,
            }),
            1 => Some(Beat::ClientHandoff),
            2 => Some(Beat::HandoffFails {
                timeout: d.one_in(2),
            }),
            _ => None,
        };
        let ending = match (rotation + d.below(2)) % 7 {
            0 => Beat::UserEnds,
            1 => Beat::NaturalEnd { during_drop: false },
            2 => Beat::NaturalEnd { during_drop: true },
            3 => Beat::GiveUp,
            4 => Beat::TokenExpired,
            5 => Beat::SessionExpired,
            _ => Beat::LostForever,
        };
        // Without an agent only the user can end it.
        let ending = match (&phase, &ending) {
            (Some(Beat::ClientHandoff | Beat::HandoffFails { .. }), _) => Beat::UserEnds,
            (Some(Beat::Handoff { .. }), Beat::NaturalEnd { .. } | Beat::UserEnds) => ending,
            (Some(Beat::Handoff { .. }), _) => Beat::NaturalEnd { during_drop: false },
            _ => ending,
        };
        beats.extend(phase);
        beats.push(ending);
        let settings = Settings {
            streaming,
            heartbeat_seconds: d.within(2, 6),
            max_attempts: d.within(3, 4),
            hold_back_ms: if d.one_in(2) { 0 } else { d.within(300, 2_500) },
            rest_failures: d.one_in(3).then(|| (d.within(1, 4), d.within(0, 2) as u32)),
            max_message_size: 1024 * d.within(24, 96),
        };
        draw_variants(&mut d, &mut beats);
        Self {
            seed,
            settings,
            beats,
        }
    }
}

/// The variants of restarts and closes, drawn after everything else so that the rest of each
/// seed's session stays what it was before they existed.
fn draw_variants(d: &mut Draw, beats: &mut [Beat]) {
    let left = [Pending::Nothing, Pending::Unechoed, Pending::Unsent][d.below(3) as usize];
    let typed = d.one_in(2);
    for beat in beats {
        match beat {
            Beat::Restart { pending } => *pending = left,
            Beat::Close {
                typed_while_down: t,
                ..
            } => *t = typed,
            _ => {}
        }
    }
}
