//! Checks of what the client shows (its view), against what the case made the mock say.

use super::{Evidence, Outcome};
use crate::contract::View;

fn view_of(e: &Evidence) -> Result<&View, Outcome> {
    e.view
        .as_ref()
        .ok_or_else(|| Outcome::NotObservable("no view".into()))
}

fn texts(view: &View) -> Result<Vec<String>, Outcome> {
    view.messages
        .as_ref()
        .map(|m| m.iter().map(|m| m.text.clone()).collect())
        .ok_or_else(|| Outcome::NotObservable("the view has no messages".into()))
}

macro_rules! need {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(outcome) => return outcome,
        }
    };
}

/// The conversation of `faults/live-delivery`, in sequence order, each message once.
pub const LIVE_DELIVERY: &[&str] = &[
    "Hi! I'm Ada. How can I help?",
    "one",
    "This reply arrives twice.",
    "two",
    "First, but delivered second.",
    "Second, but delivered first.",
    "three",
    "You only see this in a replay.",
    "This one arrives live.",
    "four",
];

/// MSG-2: no message shown twice.
pub fn shows_each_message_once(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let texts = need!(texts(view));
    for (i, text) in texts.iter().enumerate() {
        if texts[..i].contains(text) {
            return Outcome::Broken(format!("shows `{text}` twice"));
        }
    }
    Outcome::Kept
}

/// MSG-3: the messages in sequence order.
pub fn shows_messages_in_sequence_order(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let mut texts = need!(texts(view));
    texts.dedup();
    let expected: Vec<&str> = LIVE_DELIVERY
        .iter()
        .copied()
        .filter(|t| texts.iter().any(|x| x == t))
        .collect();
    if texts.iter().map(String::as_str).collect::<Vec<_>>() == expected {
        Outcome::Kept
    } else {
        Outcome::Broken(format!("order {texts:?}"))
    }
}

/// MSG-1: the message only a batch carried is shown.
pub fn shows_what_only_a_batch_carried(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    if need!(texts(view))
        .iter()
        .any(|t| t == "You only see this in a replay.")
    {
        Outcome::Kept
    } else {
        Outcome::Broken("the message that arrived only inside EVENT_BATCH is missing".into())
    }
}

/// MSG-4: the streamed story, whole, once, complete.
pub fn assembles_the_streamed_story(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let story = "Once upon a time there was a mock server that never lost a chunk.";
    let found: Vec<_> = view
        .messages
        .iter()
        .flatten()
        .filter(|m| m.text == story)
        .collect();
    match found.as_slice() {
        [one] if one.complete => Outcome::Kept,
        [_] => Outcome::Broken("the streamed message is not marked complete".into()),
        [] => Outcome::Broken("the streamed message is not shown whole".into()),
        _ => Outcome::Broken("the streamed message is shown more than once".into()),
    }
}

/// ERR-2 / MSG-3: after undocumented events and a null sequence, later messages still show.
pub fn survives_unknown_events(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let texts = need!(texts(view));
    let wanted = [
        "This reply carries unknown fields.",
        "This reply has a null sequence.",
    ];
    match wanted.iter().find(|w| !texts.iter().any(|t| t == *w)) {
        None => Outcome::Kept,
        Some(missing) => Outcome::Broken(format!("stopped showing messages (missing `{missing}`)")),
    }
}

/// ERR-1: after error system messages the conversation goes on.
pub fn goes_on_after_errors(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    if need!(texts(view))
        .iter()
        .any(|t| t == "You said: message 5")
    {
        Outcome::Kept
    } else {
        Outcome::Broken("no reply after the error messages".into())
    }
}

/// UX-2: the greeting's first suggestion was sent as a message.
pub fn sends_tapped_suggestions(e: &Evidence) -> Outcome {
    let Some(journal) = e.first() else {
        return Outcome::Broken("no session".into());
    };
    let sent = Evidence::sent_of(journal, "EVENT_TYPE_USER_MESSAGE");
    if sent.iter().any(|s| {
        s.frame
            .as_ref()
            .is_some_and(|f| f["payload"]["text"] == "I have a question")
    }) {
        Outcome::Kept
    } else {
        Outcome::Broken("tapping the suggestion did not send its message_text".into())
    }
}

/// UX-3: the live handoff and the queue are shown.
pub fn shows_the_handoff(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let Some(handoff) = view.handoff.as_deref() else {
        return Outcome::NotObservable("the view has no handoff state".into());
    };
    if !matches!(handoff, "live" | "ended") {
        return Outcome::Broken(format!(
            "handoff shows `{handoff}` after the live agent joined"
        ));
    }
    match &view.queue {
        None => Outcome::NotObservable("the view has no queue".into()),
        Some(None) => Outcome::Broken("the queue status was never shown".into()),
        Some(Some(_)) => Outcome::Kept,
    }
}

/// UX-5: the client-managed handoff's routing is shown.
pub fn routes_a_client_handoff(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    match &view.client_handoff {
        None => Outcome::NotObservable("the view has no client_handoff".into()),
        Some(Some(route)) if route["queue_name"] == "Refunds" => Outcome::Kept,
        Some(other) => Outcome::Broken(format!("client_handoff is {other:?}")),
    }
}

/// UX-6: the language changed.
pub fn applies_the_language(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    match &view.language {
        None => Outcome::NotObservable("the view has no language".into()),
        Some(Some(code)) if code == "fr-FR" => Outcome::Kept,
        Some(other) => Outcome::Broken(format!("language is {other:?}, expected fr-FR")),
    }
}

/// The observation the typing-indicator case makes while the agent thinks.
pub const TYPING_SHOWN: &str = "the agent typing";

/// UX-1: the app showed the agent typing while it thought, and not once the reply was there.
pub fn shows_and_clears_the_typing_indicator(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let Some(typing) = view.typing else {
        return Outcome::NotObservable("the view has no typing indicators".into());
    };
    let shown = e
        .observed
        .iter()
        .any(|(what, seen)| *what == TYPING_SHOWN && *seen);
    if !shown {
        return Outcome::Broken("no typing indicator while the agent was thinking".into());
    }
    if typing.agent {
        return Outcome::Broken("the typing indicator stays on after the reply".into());
    }
    Outcome::Kept
}

/// MSG-4: chunks that arrived swapped are applied in `chunk_index` order.
pub fn assembles_swapped_chunks_in_index_order(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let poem = "Roses are red, violets are blue, chunks come in order when sorted by you.";
    if view
        .messages
        .iter()
        .flatten()
        .any(|m| m.text == poem && m.complete)
    {
        Outcome::Kept
    } else {
        let shown: Vec<String> = need!(texts(view));
        Outcome::Broken(format!(
            "the streamed poem is not shown in chunk_index order: {shown:?}"
        ))
    }
}

/// MSG-4: the empty final chunk's attachment and suggestion are kept.
pub fn keeps_the_final_chunks_extras(e: &Evidence) -> Outcome {
    let view = need!(view_of(e));
    let Some(menu) = view
        .messages
        .iter()
        .flatten()
        .find(|m| m.text == "Here is today's menu.")
    else {
        return Outcome::Broken("the streamed menu reply is not shown".into());
    };
    if menu.attachments.len() == 1 && menu.suggestions == ["Order now"] {
        Outcome::Kept
    } else {
        Outcome::Broken(format!(
            "the final chunk's extras are lost: {} attachment(s), suggestions {:?}",
            menu.attachments.len(),
            menu.suggestions
        ))
    }
}

/// AUTH-4 and SEC-1 are about the app's code and storage, which a mock cannot see.
pub fn not_observable_by_a_mock(_: &Evidence) -> Outcome {
    Outcome::NotObservable(
        "a matter for review of the app's code and storage; a mock server cannot see it".into(),
    )
}
