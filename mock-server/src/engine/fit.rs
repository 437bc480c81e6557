//! Phase fitting: whether steps pushed through the control API make sense in the phase the
//! session will be in when each plays (a reply needs an agent, a live-agent step a handoff).

use super::*;

impl Session {
    /// Walks `steps` through the phases they would cause, refusing the first that does not fit.
    pub(super) fn check_fits(&self, steps: &[Step]) -> Result<(), String> {
        #[derive(PartialEq)]
        enum P {
            None,
            Agent,
            Queue,
            Live,
            Ended,
        }
        let mut phase = match &self.phase {
            _ if self.expired => return Err("the session has expired".into()),
            Phase::Ended(_) => return Err("the session has ended".into()),
            Phase::AwaitingJoin | Phase::NoAgent => P::None,
            Phase::Joining | Phase::PolyAgent => P::Agent,
            Phase::Queue => P::Queue,
            Phase::LiveAgent(_) => P::Live,
        };
        for (i, step) in steps.iter().enumerate() {
            let need = |ok: bool, why: &str| {
                if ok {
                    Ok(())
                } else {
                    Err(format!("step {i}: {why}"))
                }
            };
            if phase == P::Ended {
                return Err(format!("step {i}: the session ends before it"));
            }
            match step {
                Step::Join => {
                    need(
                        phase == P::None,
                        "the PolyAI agent is already in the conversation",
                    )?;
                    phase = P::Agent;
                }
                Step::Think | Step::Say(_) | Step::Stream(_) | Step::TriggerHandoff => {
                    need(
                        phase == P::Agent,
                        "the PolyAI agent is not in the conversation",
                    )?;
                }
                Step::AgentLeft => {
                    need(
                        phase == P::Agent,
                        "the PolyAI agent is not in the conversation",
                    )?;
                    phase = P::None;
                }
                Step::HandoffAccepted => {
                    need(phase != P::Live, "a live agent is already present")?;
                    phase = P::Queue;
                }
                Step::QueueStatus(_) => need(phase == P::Queue, "no handoff is queued")?,
                Step::LiveAgentJoined(_) => {
                    need(phase != P::Live, "a live agent is already present")?;
                    phase = P::Live;
                }
                Step::LiveAgentTyping(_) | Step::LiveAgentSays(_) => {
                    need(phase == P::Live, "no live agent is present")?;
                }
                Step::LiveAgentLeft => {
                    need(phase == P::Live, "no live agent is present")?;
                    phase = P::None;
                }
                Step::HandoffFailed | Step::HandoffTimeout => phase = P::None,
                Step::End(_) => phase = P::Ended,
                Step::Pause(_)
                | Step::ClientHandoffRequired { .. }
                | Step::LanguageChanged(_)
                | Step::Notice { .. }
                | Step::Fault(_) => {}
            }
        }
        Ok(())
    }
}
