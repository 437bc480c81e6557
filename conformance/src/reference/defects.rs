//! Deliberate defects of the reference client: each built-in mutant switches on one, and the
//! kit's own tests check that it fails the obligations it names and passes every other.

use crate::obligations::ObligationId;

/// One switch per way a client can go wrong (all off: the honest client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defects {
    pub no_dedup: bool,
    pub arrival_order: bool,
    pub no_batch_flattening: bool,
    pub join_on_reconnect: bool,
    pub join_before_history: bool,
    pub join_after_fixed_delay: bool,
    pub join_from_replay_only: bool,
    pub new_session_on_reconnect: bool,
    pub no_cursor: bool,
    pub stale_cursor: bool,
    pub cursor_lost_on_restart: bool,
    pub no_heartbeat: bool,
    pub fixed_heartbeat: bool,
    pub one_second_heartbeat: bool,
    pub reconnect_after_end: bool,
    pub new_session_after_end: bool,
    pub no_close_after_end: bool,
    pub input_after_end: bool,
    pub generic_end_reason: bool,
    pub close_on_unknown_event: bool,
    pub close_on_error_message: bool,
    pub oversized_frames: bool,
    pub no_resend: bool,
    pub resend_too_early: bool,
    pub resend_forever: bool,
    pub fail_late: bool,
    pub fail_at_last_resend: bool,
    pub resend_new_id: bool,
    pub no_backoff: bool,
    pub constant_backoff: bool,
    pub never_give_up: bool,
    pub one_attempt_too_many: bool,
    pub no_content_type: bool,
    pub no_x_host: bool,
    pub no_rest_retry: bool,
    pub retry_after_ignored: bool,
    pub rest_constant_backoff: bool,
    pub token_reuse: bool,
    pub retry_gone_session: bool,
    pub no_typing_indicator: bool,
    pub typing_forever: bool,
    pub typing_while_unanswered: bool,
    pub typing_state_inverted: bool,
    pub server_fields: bool,
    pub extra_frame_field: bool,
    pub chunks_in_arrival_order: bool,
    pub drop_final_chunk_extras: bool,
    pub complete_early: bool,
    pub drop_out_of_order_live: bool,
    pub language_by_arrival: bool,
    pub no_queue_status: bool,
    pub no_suggestions: bool,
}

/// A built-in mutant: one defect, and the obligations it breaks (usually one; two where the
/// defect breaks both by nature, said in `why_two`).
#[derive(Debug, Clone)]
pub struct Mutant {
    pub name: &'static str,
    pub defects: Defects,
    pub breaks: &'static [ObligationId],
    pub description: &'static str,
}

macro_rules! mutants {
    ($( $name:literal $field:ident [$($id:ident),+] $description:literal; )*) => {
        /// Every built-in mutant.
        pub fn mutants() -> Vec<Mutant> {
            vec![$(
                Mutant {
                    name: $name,
                    defects: Defects { $field: true, ..Defects::default() },
                    breaks: &[$(ObligationId::$id),+],
                    description: $description,
                },
            )*]
        }
    };
}

mutants! {
    "no-dedup" no_dedup [Msg2] "shows an event again when it arrives twice";
    "arrival-order" arrival_order [Msg3, Ux6] "orders events by arrival, not sequence (so an older LANGUAGE_CHANGED arriving last wins too)";
    "no-batch-flattening" no_batch_flattening [Msg1] "ignores the events inside batches but SESSION_START";
    "join-on-reconnect" join_on_reconnect [Ws4] "sends the join on every connection";
    "join-before-history" join_before_history [Ws2] "joins as soon as the socket opens";
    "join-after-fixed-delay" join_after_fixed_delay [Ws2] "joins 400 ms after the socket opens instead of waiting for the history";
    "join-from-replay-only" join_from_replay_only [Ws4] "decides to join from the replayed batch alone, forgetting the agent already joined";
    "new-session-on-reconnect" new_session_on_reconnect [Rc1] "creates a new session instead of reconnecting";
    "no-cursor" no_cursor [Rc2] "reconnects without a cursor";
    "stale-cursor" stale_cursor [Rc2] "reconnects with a cursor two behind the highest sequence";
    "cursor-lost-on-restart" cursor_lost_on_restart [Rc2] "after an app restart shows the persisted conversation but resumes with cursor 0";
    "no-heartbeat" no_heartbeat [Hb1, Hb2] "never sends heartbeats (so none at the advertised interval either)";
    "fixed-heartbeat" fixed_heartbeat [Hb2] "heartbeats every 30 s whatever the server advertises";
    "one-second-heartbeat" one_second_heartbeat [Hb2] "heartbeats every 1 s whatever the server advertises";
    "reconnect-after-end" reconnect_after_end [Ux4] "reconnects after SESSION_END";
    "new-session-after-end" new_session_after_end [Ux4] "starts a new session on its own after SESSION_END";
    "no-close-after-end" no_close_after_end [Ux4] "leaves the socket for the server to close after SESSION_END";
    "input-after-end" input_after_end [Ux4] "takes the user's messages after SESSION_END instead of disabling input";
    "generic-end-reason" generic_end_reason [Ux4] "shows every end as REASON_NATURAL_END";
    "close-on-unknown-event" close_on_unknown_event [Err2] "closes the socket on an event type it does not know";
    "close-on-error-message" close_on_error_message [Err1] "closes the socket on an error SYSTEM_MESSAGE";
    "oversized-frames" oversized_frames [Ws7] "sends messages over the advertised size limit";
    "no-resend" no_resend [Msg5] "never resends an unechoed message";
    "resend-too-early" resend_too_early [Msg5] "resends an unechoed message after 1.5 s";
    "resend-forever" resend_forever [Msg5] "resends an unechoed message every 5 s without a cap";
    "resend-new-id" resend_new_id [Msg5] "gives each resend a new client_event_id";
    "fail-late" fail_late [Msg5] "marks a message failed 20 s after its third resend, not 5 s";
    "fail-at-last-resend" fail_at_last_resend [Msg5] "marks a message failed the moment it is resent the third time";
    "no-backoff" no_backoff [Rc3, Rc4] "reconnects at once, again and again, with no limit";
    "constant-backoff" constant_backoff [Rc3] "waits 1 s before every reconnect attempt";
    "never-give-up" never_give_up [Rc4] "backs off properly but never stops trying";
    "one-attempt-too-many" one_attempt_too_many [Rc4] "makes max_reconnect_attempts + 1 attempts";
    "no-content-type" no_content_type [Auth1, Auth2] "sends the REST calls as text/plain";
    "no-x-host" no_x_host [Auth1] "leaves X-Host out of the access-token call";
    "no-rest-retry" no_rest_retry [Auth5] "gives up on the first failed REST call";
    "retry-after-ignored" retry_after_ignored [Auth5] "retries a 429 after 500 ms whatever Retry-After says";
    "rest-constant-backoff" rest_constant_backoff [Auth5] "retries every 5xx after the same 1 s";
    "token-reuse" token_reuse [Auth3, Rc5] "keeps one access token for every session (so a dead one too)";
    "retry-gone-session" retry_gone_session [Rc5] "keeps retrying a session the server answered 404 or 401 for";
    "no-typing-indicator" no_typing_indicator [Ux1] "never shows the agent typing";
    "typing-forever" typing_forever [Ux1] "never clears the typing indicator";
    "typing-while-unanswered" typing_while_unanswered [Ux1] "shows the agent typing whenever a user message has no answer yet";
    "typing-state-inverted" typing_state_inverted [Ws6] "sends USER_TYPING with the opposite state";
    "server-fields" server_fields [Ws5] "puts an `id` on every frame it sends";
    "extra-frame-field" extra_frame_field [Ws5] "adds a top-level `client_ts` to every frame";
    "chunks-in-arrival-order" chunks_in_arrival_order [Msg4] "joins chunks in arrival order instead of chunk_index order";
    "drop-final-chunk-extras" drop_final_chunk_extras [Msg4] "drops the attachments and suggestions of a stream's final chunk";
    "complete-early" complete_early [Msg4] "shows a streamed message complete from its first chunk";
    "drop-out-of-order-live" drop_out_of_order_live [Msg3, Msg4] "discards a live event older than the newest it has (a late message, a swapped chunk)";
    "language-by-arrival" language_by_arrival [Ux6] "shows the LANGUAGE_CHANGED that arrived last";
    "no-queue-status" no_queue_status [Ux3] "never shows the queue status";
    "no-suggestions" no_suggestions [Ux2] "renders no response suggestions";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mutant_switches_on_exactly_one_defect_and_names_are_unique() {
        let all = mutants();
        assert!(all.len() >= 34, "22 old + at least 12 new: {}", all.len());
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
