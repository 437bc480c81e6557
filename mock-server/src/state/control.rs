//! The control API's operations on the state: sessions, pushed steps, scenario choices, the
//! clock, armed REST failures, reset. Each refuses with nothing changed.

use std::sync::Arc;
use std::time::Duration;

use super::session::{SessionSummary, dispatch};
use super::{AppState, SessionSlot};
use crate::engine::SessionStatus;
use crate::journal::JournalEvent;

/// Why a control operation was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no session `{0}`")]
    UnknownSession(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

impl AppState {
    /// Every live session (active or still replayable).
    pub fn sessions(&self) -> Vec<SessionSummary> {
        let slots = self.inner.registry.slots();
        let mut out: Vec<SessionSummary> = slots
            .iter()
            .filter(|s| s.status() != SessionStatus::Expired)
            .map(|s| s.summary())
            .collect();
        out.sort_by_key(|s| s.created_at_ms);
        out
    }

    fn session_or_error(&self, id: &str) -> Result<Arc<SessionSlot>, ControlError> {
        self.session(id)
            .ok_or_else(|| ControlError::UnknownSession(id.to_owned()))
    }

    /// Plays `steps` in session `id` now, as if its scenario had said them.
    pub fn push_steps(
        &self,
        id: &str,
        steps: Vec<crate::scenario::Step>,
        action: &str,
    ) -> Result<(), ControlError> {
        let slot = self.session_or_error(id)?;
        let now = self.inner.clock.now();
        let mut locked = slot.lock();
        let actions = locked
            .engine
            .push_steps(steps, now)
            .map_err(ControlError::Conflict)?;
        locked.note(
            now,
            JournalEvent::Control {
                action: action.to_owned(),
            },
        );
        dispatch(&mut locked, None, actions, now);
        drop(locked);
        slot.journal_grew.notify_waiters();
        slot.wake.notify_one();
        Ok(())
    }

    /// The scenario of the next session created, once (a catalogue name or a file).
    pub async fn set_next_scenario(&self, name: &str) -> Result<(), ControlError> {
        let key = self.load_scenario(name).await?;
        self.inner.scenarios.set_next(key);
        Ok(())
    }

    /// The scenario of every later token minted for connector token `token`.
    pub async fn set_connector_scenario(
        &self,
        token: &str,
        name: &str,
    ) -> Result<(), ControlError> {
        if self.connectors().by_token(token).is_none() {
            return Err(ControlError::Invalid(format!(
                "no connector with token `{token}`"
            )));
        }
        let key = self.load_scenario(name).await?;
        self.inner.scenarios.set_for_connector(token, key);
        Ok(())
    }

    /// The scenario chosen for connector token `token` through the control API.
    pub fn connector_scenario(&self, token: &str) -> Option<String> {
        self.inner.scenarios.for_connector(token)
    }

    /// Makes `name` selectable and returns the name it is selected by: a catalogue name as it
    /// is, or a file's canonical path (however `name` spells it, one copy is held). The file
    /// is read off the async runtime and outside every lock, bounded in size, never waiting on
    /// a FIFO, from the configured scenario directories only when some are configured (judged
    /// by the file opened), and its errors echo none of its values.
    async fn load_scenario(&self, name: &str) -> Result<String, ControlError> {
        if !self.inner.scenarios.catalogue().is_file_reference(name) {
            return Ok(name.to_owned());
        }
        let unreadable = || {
            ControlError::Invalid(format!(
                "no scenario named `{name}`, and {}",
                crate::scenario::UNREADABLE
            ))
        };
        let path = std::path::PathBuf::from(name);
        // Only scenario-shaped names are opened: any other path (`/etc/passwd`, a device)
        // gets the one answer without a look, so nothing about it can be learnt.
        if !path
            .extension()
            .is_some_and(|e| e == "json" || e == "jsonl")
        {
            return Err(unreadable());
        }
        let dirs = self.inner.config.scenario_dirs.clone();
        let loaded =
            tokio::task::spawn_blocking(move || crate::scenario::load_file_within(&path, &dirs))
                .await
                .map_err(|_| unreadable())?;
        match loaded {
            Ok(file) => {
                let key = file.key.clone();
                self.inner
                    .scenarios
                    .catalogue()
                    .insert_loaded(file)
                    .map_err(ControlError::Conflict)?;
                Ok(key)
            }
            Err(error) if error.problem != crate::scenario::UNREADABLE => {
                Err(ControlError::Invalid(error.to_string()))
            }
            Err(_) => Err(unreadable()),
        }
    }

    fn wake_timers(&self) {
        for slot in self.inner.registry.slots() {
            slot.wake.notify_one();
        }
    }

    /// Moves the mock clock forward: timers due by then fire now.
    pub fn advance_clock(&self, by: Duration) -> Result<(), ControlError> {
        self.inner.clock.advance(by).map_err(|now| {
            ControlError::Invalid(format!(
                "`advance_ms`: the mock clock stops at 100 years; it is at {} ms and cannot go {} ms further",
                now.as_millis(),
                by.as_millis()
            ))
        })?;
        self.wake_timers();
        Ok(())
    }

    /// Runs the mock clock `scale` times as fast as real time.
    pub fn set_clock_scale(&self, scale: f64) -> Result<(), ControlError> {
        if !(scale.is_finite() && super::clock::SCALE_RANGE.contains(&scale)) {
            return Err(ControlError::Invalid(format!(
                "`scale` must be between 0.001 and 1000000, got {scale}"
            )));
        }
        self.inner.clock.set_scale(scale);
        self.wake_timers();
        Ok(())
    }

    /// Drops every session (sockets closed with 1001) and every control-API choice.
    pub fn reset(&self) {
        let now = self.inner.clock.now();
        for slot in self.inner.registry.drain() {
            let mut locked = slot.lock();
            let actions = locked.engine.forget();
            dispatch(&mut locked, None, actions, now);
            drop(locked);
            slot.wake.notify_one();
            slot.journal_grew.notify_waiters();
        }
        self.inner.scenarios.clear();
        self.inner.rest.clear();
    }
}
