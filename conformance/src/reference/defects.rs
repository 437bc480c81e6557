//! Deliberate defects of the reference client: each built-in mutant switches on one, and the
//! kit's own tests check that it fails the obligations it names and passes every other.

use crate::obligations::ObligationId;

/// One way a client can go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Defect {
    NoDedup,
    ArrivalOrder,
    NoBatchFlattening,
    JoinOnReconnect,
    JoinBeforeHistory,
    JoinAfterFixedDelay,
    JoinOn1500MsTimer,
    JoinFromReplayOnly,
    RejoinAfterDrop,
    NewSessionOnReconnect,
    NoCursor,
    StaleCursor,
    CursorLostOnRestart,
    NoHeartbeat,
    FixedHeartbeat,
    OneSecondHeartbeat,
    Heartbeat2400Ms,
    HeartbeatNotRestarted,
    ReconnectAfterEnd,
    NewSessionAfterEnd,
    NoCloseAfterEnd,
    InputAfterEnd,
    GenericEndReason,
    CloseOnUnknownEvent,
    DropBatchWithUnknown,
    CloseOnErrorMessage,
    OversizedFrames,
    NoResend,
    ResendTooEarly,
    ResendForever,
    ResendNoCap,
    FailLate,
    FailAtLastResend,
    ResendNewId,
    ResendEchoedAfterReconnect,
    NoBackoff,
    ConstantBackoff,
    BackoffStopsGrowing,
    NeverGiveUp,
    OneAttemptTooMany,
    NewSessionAfterGivingUp,
    NoContentType,
    NoXHost,
    NoRestRetry,
    RetryAfterIgnored,
    RetryAfterFixed3S,
    RestConstantBackoff,
    TokenReuse,
    RetryGoneSession,
    NoTypingIndicator,
    TypingForever,
    TypingWhileUnanswered,
    TypingStateInverted,
    NoOpTyping,
    ServerFields,
    ExtraFrameField,
    ChunksInArrivalOrder,
    DropFinalChunkExtras,
    CompleteEarly,
    DropOutOfOrderLive,
    LiveAgentAsAgent,
    ErrorAsAgentMessage,
    LanguageByArrival,
    NoQueueStatus,
    NoSuggestions,
    PlaintextWs,
}

/// The defects a client has: none (the honest client), or the one a mutant switches on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defects(Option<Defect>);

impl Defects {
    /// A client with this one defect.
    pub fn only(defect: Defect) -> Self {
        Self(Some(defect))
    }

    pub fn has(self, defect: Defect) -> bool {
        self.0 == Some(defect)
    }
}

/// A built-in mutant: one defect, and the obligations it breaks (usually one; two where the
/// defect breaks both by nature, said in its description).
#[derive(Debug, Clone)]
pub struct Mutant {
    pub name: &'static str,
    pub defects: Defects,
    pub breaks: &'static [ObligationId],
    /// Obligations it may also break as a consequence the evidence cannot tell apart (a client
    /// that never read what a batch carried reconnects with the cursor and resends of one that
    /// never got it); the mutant table allows them, and no more.
    pub consequences: &'static [ObligationId],
    pub description: &'static str,
    /// Only visible when the mock serves TLS (`run --tls`): the kit's own tests run it so.
    pub tls: bool,
}

macro_rules! mutants {
    (@tls) => { false };
    (@tls tls) => { true };
    ($( $name:literal $defect:ident $(($tls:ident))? [$($id:ident),+] $([also $($also:ident),+])? $description:literal; )*) => {
        /// Every built-in mutant.
        pub fn mutants() -> Vec<Mutant> {
            vec![$(
                Mutant {
                    name: $name,
                    defects: Defects::only(Defect::$defect),
                    breaks: &[$(ObligationId::$id),+],
                    consequences: &[$($(ObligationId::$also),+)?],
                    description: $description,
                    tls: mutants!(@tls $($tls)?),
                },
            )*]
        }
    };
}

mutants! {
    "no-dedup" NoDedup [Msg2] "shows an event again when it arrives twice";
    "arrival-order" ArrivalOrder [Msg3, Ux6] "orders events by arrival, not sequence (so an older LANGUAGE_CHANGED arriving last wins too)";
    "no-batch-flattening" NoBatchFlattening [Msg1] [also Rc2, Msg5] "ignores the events inside batches but SESSION_START (so it reconnects with an older cursor and resends what only a replay echoed)";
    "join-on-reconnect" JoinOnReconnect [Ws4] "sends the join on every connection";
    "join-before-history" JoinBeforeHistory [Ws2] "joins as soon as the socket opens";
    "join-after-fixed-delay" JoinAfterFixedDelay [Ws2] "joins 400 ms after the socket opens instead of waiting for the history";
    "join-on-1500ms-timer" JoinOn1500MsTimer [Ws2] "joins 1.5 s after the socket opens, whatever the history: later than a short hold-back, earlier than a long one";
    "join-from-replay-only" JoinFromReplayOnly [Ws4] "decides to join from the replayed batch alone, forgetting the agent already joined";
    "rejoin-after-drop" RejoinAfterDrop [Ws4] "joins again after the replay of a reconnect that followed a drop (not after an app restart)";
    "new-session-on-reconnect" NewSessionOnReconnect [Rc1] "creates a new session instead of reconnecting";
    "no-cursor" NoCursor [Rc2] "reconnects without a cursor";
    "stale-cursor" StaleCursor [Rc2] "reconnects with a cursor two behind the highest sequence";
    "cursor-lost-on-restart" CursorLostOnRestart [Rc2] "after an app restart shows the persisted conversation but resumes with cursor 0";
    "no-heartbeat" NoHeartbeat [Hb1, Hb2] "never sends heartbeats (so none at the advertised interval either)";
    "fixed-heartbeat" FixedHeartbeat [Hb2] "heartbeats every 30 s whatever the server advertises";
    "one-second-heartbeat" OneSecondHeartbeat [Hb2] "heartbeats every 1 s whatever the server advertises";
    "heartbeat-2400ms" Heartbeat2400Ms [Hb2] "heartbeats every 2.4 s whatever the server advertises";
    "heartbeat-not-restarted" HeartbeatNotRestarted [Hb1, Hb2] "heartbeats on its first connection only: after a reconnect they stop (so none at the interval either)";
    "reconnect-after-end" ReconnectAfterEnd [Ux4] "reconnects after SESSION_END";
    "new-session-after-end" NewSessionAfterEnd [Ux4] "starts a new session on its own after SESSION_END";
    "no-close-after-end" NoCloseAfterEnd [Ux4] "leaves the socket for the server to close after SESSION_END";
    "input-after-end" InputAfterEnd [Ux4] "takes the user's messages after SESSION_END instead of disabling input";
    "generic-end-reason" GenericEndReason [Ux4] "shows every end as REASON_NATURAL_END";
    "close-on-unknown-event" CloseOnUnknownEvent [Err2] "closes the socket on an event type it does not know";
    "drop-batch-with-unknown" DropBatchWithUnknown [Err2] [also Rc2] "discards a whole batch when one of its events has a type it does not know (so it reconnects with the cursor of a client that never saw the batch)";
    "close-on-error-message" CloseOnErrorMessage [Err1] "closes the socket on an error SYSTEM_MESSAGE";
    "oversized-frames" OversizedFrames [Ws7] "sends messages over the advertised size limit";
    "no-resend" NoResend [Msg5] "never resends an unechoed message";
    "resend-too-early" ResendTooEarly [Msg5] "resends an unechoed message after 1.5 s";
    "resend-forever" ResendForever [Msg5] "resends an unechoed message every 5 s without a cap";
    "resend-no-cap" ResendNoCap [Msg5] "resends an unechoed message 5 s, 10 s, 15 s, 20 s … apart, never giving up";
    "resend-new-id" ResendNewId [Msg5] "gives each resend a new client_event_id";
    "resend-echoed-after-reconnect" ResendEchoedAfterReconnect [Msg5] "after a reconnect sends again every message of the session, echoed ones too";
    "fail-late" FailLate [Msg5] "marks a message failed 20 s after its third resend, not 5 s";
    "fail-at-last-resend" FailAtLastResend [Msg5] "marks a message failed the moment it is resent the third time";
    "no-backoff" NoBackoff [Rc3, Rc4] "reconnects at once, again and again, with no limit";
    "constant-backoff" ConstantBackoff [Rc3] "waits 1 s before every reconnect attempt";
    "backoff-stops-growing" BackoffStopsGrowing [Rc3] "waits 1 s, then 2 s before every later attempt";
    "never-give-up" NeverGiveUp [Rc4] "backs off properly but never stops trying";
    "one-attempt-too-many" OneAttemptTooMany [Rc4] "makes max_reconnect_attempts + 1 attempts";
    "new-session-after-giving-up" NewSessionAfterGivingUp [Rc4] "gives up after the advertised attempts, shows closed, then opens a new session by itself";
    "no-content-type" NoContentType [Auth1, Auth2] "sends the REST calls as text/plain";
    "no-x-host" NoXHost [Auth1] "leaves X-Host out of the access-token call";
    "no-rest-retry" NoRestRetry [Auth5] "gives up on the first failed REST call";
    "retry-after-ignored" RetryAfterIgnored [Auth5] "retries a 429 after 500 ms whatever Retry-After says";
    "retry-after-fixed-3s" RetryAfterFixed3S [Auth5] "retries a 429 after 3 s whatever Retry-After says";
    "rest-constant-backoff" RestConstantBackoff [Auth5] "retries every 5xx after the same 1 s";
    "token-reuse" TokenReuse [Auth3, Rc5] "keeps one access token for every session (so a dead one too)";
    "retry-gone-session" RetryGoneSession [Rc5] "keeps retrying a session the server answered 404 or 401 for";
    "no-typing-indicator" NoTypingIndicator [Ux1] "never shows the agent typing";
    "typing-forever" TypingForever [Ux1] "never clears the typing indicator";
    "typing-while-unanswered" TypingWhileUnanswered [Ux1] "shows the agent typing whenever a user message has no answer yet";
    "typing-state-inverted" TypingStateInverted [Ws6] "sends USER_TYPING with the opposite state";
    "no-op-typing" NoOpTyping [Ws6] "accepts the user's typing and sends nothing";
    "server-fields" ServerFields [Ws5] "puts an `id` on every frame it sends";
    "extra-frame-field" ExtraFrameField [Ws5] "adds a top-level `client_ts` to every frame";
    "chunks-in-arrival-order" ChunksInArrivalOrder [Msg4] "joins chunks in arrival order instead of chunk_index order";
    "drop-final-chunk-extras" DropFinalChunkExtras [Msg4] "drops the attachments and suggestions of a stream's final chunk";
    "complete-early" CompleteEarly [Msg4] "shows a streamed message complete from its first chunk";
    "drop-out-of-order-live" DropOutOfOrderLive [Msg3, Msg4] "discards a live event older than the newest it has (a late message, a swapped chunk)";
    "live-agent-as-agent" LiveAgentAsAgent [Msg3] "shows the live agent's messages as the AI agent's";
    "error-as-agent-message" ErrorAsAgentMessage [Msg3] "shows error system messages as messages from the agent";
    "language-by-arrival" LanguageByArrival [Ux6] "shows the LANGUAGE_CHANGED that arrived last";
    "no-queue-status" NoQueueStatus [Ux3] "never shows the queue status";
    "no-suggestions" NoSuggestions [Ux2] "renders no response suggestions";
    "plaintext-ws" PlaintextWs (tls) [Ws1] "opens the WebSocket with ws:// even when the base URL is https://";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mutant_switches_on_exactly_one_defect_and_names_are_unique() {
        let all = mutants();
        assert!(all.len() >= 65, "52 before kit v3, 13 since: {}", all.len());
        for (i, mutant) in all.iter().enumerate() {
            assert_ne!(mutant.defects, Defects::default(), "{}", mutant.name);
            assert!(
                all[..i]
                    .iter()
                    .all(|m| m.name != mutant.name && m.defects != mutant.defects),
                "{} repeats an earlier mutant",
                mutant.name
            );
        }
    }
}
