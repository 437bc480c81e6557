//! Properties: under any generated schedule of faults, the reference client ends up showing the
//! canonical conversation, each message once and in order, and stays within its wire
//! obligations. A failure shrinks to the smallest schedule; proptest prints it and records its
//! seed in `proptest-regressions/`, and `cargo test -p conformance --test it properties`
//! replays exactly that schedule first.

use std::sync::Arc;

use conformance::cases::{ExpectedMessage, catalogue};
use conformance::checks::{self, Evidence, Outcome, Sample};
use conformance::contract::{Author, Command};
use conformance::driver::{ClientUnderTest, InProcess};
use conformance::obligations::ObligationId;
use mock_server::scenario::raw::{RawFault, RawStep};
use proptest::prelude::*;

use crate::{env_for, is_open, messages, mock, ok, wait_for};

/// A fault applied just before the user sends a message.
#[derive(Debug, Clone)]
enum Injected {
    Nothing,
    Drop,
    DropThenReverseReplay,
    DropThenSplitReplay(usize),
    DropThenRefuse(u32),
    Duplicate,
    Swap,
    NullSequence,
    UnknownFields,
    /// A drop, then the next replay in one-event batches dropped after `n` of them.
    DropMidReplay(usize),
    /// The whole history again, as a live batch (repeated batches).
    ResendHistory,
    /// An agent message streamed in `pieces` chunks, the sockets dropped after `drop_after`.
    StreamDroppedMidway {
        pieces: usize,
        drop_after: usize,
    },
}

impl Injected {
    fn faults(&self) -> Vec<RawFault> {
        match self {
            Self::Nothing => vec![],
            Self::Drop => vec![RawFault::Drop],
            Self::DropThenReverseReplay => vec![RawFault::ReverseNextReplay, RawFault::Drop],
            Self::DropThenSplitReplay(n) => vec![RawFault::SplitNextReplay(*n), RawFault::Drop],
            Self::DropThenRefuse(n) => vec![
                RawFault::RefuseHandshakes(mock_server::scenario::raw::RawRefusal {
                    count: *n,
                    status: 503,
                }),
                RawFault::Drop,
            ],
            Self::Duplicate => vec![RawFault::DuplicateNext],
            Self::Swap => vec![RawFault::SwapNext],
            Self::NullSequence => vec![RawFault::NullSequenceNext],
            Self::UnknownFields => vec![RawFault::UnknownFieldsNext, RawFault::UnknownEvent],
            Self::DropMidReplay(n) => vec![
                RawFault::SplitNextReplay(1),
                RawFault::DropNextReplayAfter(*n),
                RawFault::Drop,
            ],
            Self::ResendHistory => vec![RawFault::ResendHistory],
            Self::StreamDroppedMidway { .. } => vec![],
        }
    }

    /// Steps pushed before the user's message: a streamed agent message that breaks the socket
    /// half-way (its text, for the canonical conversation).
    fn pushed(&self) -> Option<(Vec<RawStep>, String)> {
        let Self::StreamDroppedMidway { pieces, drop_after } = self else {
            return None;
        };
        let text = "A story told in pieces, whatever happens to the socket.".to_owned();
        let step = RawStep::Stream(mock_server::scenario::raw::RawStream {
            text: Some(text.clone()),
            pieces: Some(*pieces),
            chunk_interval_ms: Some(150),
            drop_after: Some(*drop_after),
            ..Default::default()
        });
        Some((vec![step], text))
    }
}

fn injected() -> impl Strategy<Value = Injected> {
    prop_oneof![
        3 => Just(Injected::Nothing),
        2 => Just(Injected::Drop),
        1 => Just(Injected::DropThenReverseReplay),
        1 => (1usize..4).prop_map(Injected::DropThenSplitReplay),
        1 => (1u32..3).prop_map(Injected::DropThenRefuse),
        2 => Just(Injected::Duplicate),
        2 => Just(Injected::Swap),
        1 => Just(Injected::NullSequence),
        1 => Just(Injected::UnknownFields),
        1 => (1usize..3).prop_map(Injected::DropMidReplay),
        1 => Just(Injected::ResendHistory),
        2 => (2usize..5).prop_flat_map(|pieces| (Just(pieces), 1..pieces))
            .prop_map(|(pieces, drop_after)| Injected::StreamDroppedMidway { pieces, drop_after }),
    ]
}

fn schedule() -> impl Strategy<Value = (bool, Vec<(String, Injected)>)> {
    (
        any::<bool>(),
        proptest::collection::vec(("[a-z]{1,6}", injected()), 1..=3),
    )
}

async fn converse(streaming: bool, schedule: Vec<(String, Injected)>) -> Result<(), String> {
    let server = mock(mock_server::Config::default()).await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut client = InProcess::new(env_for(&server, None), dir.path());
    ok(&mut client, Command::Start { streaming }).await;
    let view = wait_for(&mut client, "the greeting", |v| messages(v).len() == 1).await;
    let session = view.session_id.flatten().ok_or("no session id")?;
    let mut canonical = vec![(Author::Agent, "Hello! How can I help you today?".to_owned())];
    for (text, fault) in &schedule {
        if let Some((steps, streamed)) = fault.pushed() {
            server
                .push_steps(&session, steps)
                .map_err(|e| e.to_string())?;
            wait_for(&mut client, "the streamed message", |v| {
                is_open(v) && messages(v).iter().any(|(_, t, c)| *t == streamed && *c)
            })
            .await;
            canonical.push((Author::Agent, streamed));
        }
        let faults = fault.faults();
        if !faults.is_empty() {
            server
                .inject_faults(&session, faults)
                .map_err(|e| e.to_string())?;
        }
        ok(&mut client, Command::Send { text: text.clone() }).await;
        let reply = format!("You said: {text}");
        // The same text may come twice in a schedule: wait for this turn's reply.
        let replies = canonical.iter().filter(|(_, t)| *t == reply).count() + 1;
        wait_for(&mut client, "the reply", |v| {
            is_open(v)
                && messages(v)
                    .iter()
                    .filter(|(_, t, c)| *t == reply && *c)
                    .count()
                    >= replies
        })
        .await;
        canonical.push((Author::User, text.clone()));
        canonical.push((Author::Agent, reply));
    }
    let view = match client.call(Command::View).await {
        Ok(conformance::contract::Reply::Ok(Some(view))) => *view,
        other => return Err(format!("no view: {other:?}")),
    };
    let shown: Vec<(Author, String)> = messages(&view)
        .into_iter()
        .map(|(from, text, _)| (from, text))
        .collect();
    if shown != canonical {
        return Err(format!("shown {shown:?}\nexpected {canonical:?}"));
    }
    // The kit's own checks over this conversation's evidence (any case's settings will do:
    // these checks read only the journals, the HTTP log and the view).
    let mut case = catalogue()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|c| c.id == "delivery")
        .ok_or("no delivery case")?
        .instantiate(&conformance::params::Params::draw(0))
        .map_err(|e| e.to_string())?;
    case.config = mock_server::Config::default();
    case.conversation = Some(
        canonical
            .iter()
            .map(|(from, text)| ExpectedMessage {
                from: (*from).into(),
                text: text.clone(),
            })
            .collect(),
    );
    let samples = vec![Sample {
        sent_ms: u64::MAX - 1,
        replied_ms: u64::MAX - 1,
        view: Arc::new(view),
    }];
    let evidence = Evidence::gather(case, &server, samples, Vec::new(), Vec::new(), u64::MAX);
    for id in [
        ObligationId::Ws3,
        ObligationId::Ws4,
        ObligationId::Ws5,
        ObligationId::Rc1,
        ObligationId::Rc2,
        ObligationId::Msg1,
        ObligationId::Msg2,
        ObligationId::Msg3,
    ] {
        if let Outcome::Broken(why) = checks::judge(id, &evidence) {
            return Err(format!("{id}: {why}"));
        }
    }
    let _ = client.call(Command::Exit).await;
    server.shutdown().await;
    Ok(())
}

proptest! {
    // Each case is a real conversation over sockets (a drop costs the 1 s backoff): few cases.
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_reference_client_shows_the_canonical_conversation_under_any_fault_schedule((streaming, schedule) in schedule()) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let outcome = runtime.block_on(crate::bounded(converse(streaming, schedule.clone())));
        prop_assert!(
            outcome.is_ok(),
            "streaming {}, schedule {:?}: {}\nreproduce: cargo test -p conformance --test it properties \
             (the failing seed is saved in conformance/tests/proptest-regressions/properties.txt and runs first)",
            streaming,
            schedule,
            outcome.err().unwrap_or_default()
        );
    }
}
