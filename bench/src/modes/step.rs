//! `Step`, one configuration to measure and how its samples run; the shared plan builders.

use std::time::Duration;

use anyhow::Context;

use super::Timing;
use crate::client::Warmup;
use crate::load::{self, Loop, Window};
use crate::proc::{Binaries, Server};
use crate::progress::Progress;
use crate::report::{Comparison, Goal};

/// One configuration to measure.
#[derive(Debug, Clone)]
pub enum Step {
    Loop {
        kind: Loop,
        concurrency: usize,
        /// Both servers serve TLS (`wss://`, `https://`).
        tls: bool,
        /// The servers compared (baseline, subject).
        servers: (Server, Server),
        pairs: usize,
        window: Window,
        goals: Vec<Goal>,
    },
    Idle {
        sessions: usize,
        warmup: Warmup,
        pairs: usize,
        goals: Vec<Goal>,
    },
    Startup {
        pairs: usize,
        goals: Vec<Goal>,
    },
}

pub fn window(duration: f64, warmup: f64) -> Window {
    Window {
        warmup: Duration::from_secs_f64(warmup.max(0.0)),
        duration: Duration::from_secs_f64(duration.max(0.1)),
    }
}

/// A closed loop of `kind` at each concurrency, reference against mock.
pub fn loops(
    kind: Loop,
    concurrency: &[usize],
    t: &Timing,
    goals: &dyn Fn(usize) -> Vec<Goal>,
) -> Vec<Step> {
    concurrency
        .iter()
        .map(|&c| Step::Loop {
            kind,
            concurrency: c,
            tls: false,
            servers: (Server::Reference, Server::Mock),
            pairs: t.pairs,
            window: window(t.duration, t.warmup),
            goals: goals(c),
        })
        .collect()
}

/// The same loops, both servers serving TLS.
pub fn over_tls(steps: Vec<Step>) -> Vec<Step> {
    steps
        .into_iter()
        .map(|mut step| {
            if let Step::Loop { tls, .. } = &mut step {
                *tls = true;
            }
            step
        })
        .collect()
}

/// The same loops, the mock through `behind` (a proxy) against the mock direct.
pub fn proxied(steps: Vec<Step>, behind: Server) -> Vec<Step> {
    steps
        .into_iter()
        .map(|mut step| {
            if let Step::Loop { servers, .. } = &mut step {
                *servers = (Server::Mock, behind);
            }
            step
        })
        .collect()
}

impl Step {
    /// Sockets this step holds open at once in this process.
    pub fn sockets(&self) -> usize {
        match self {
            Self::Loop { concurrency, .. } => *concurrency,
            Self::Idle { sessions, .. } => *sessions,
            Self::Startup { .. } => 2,
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Loop {
                kind: Loop::Echo,
                concurrency,
                tls: true,
                ..
            } => format!("echo over TLS C={concurrency}"),
            Self::Loop {
                kind: Loop::Echo,
                concurrency,
                servers: (_, Server::Proxied),
                ..
            } => format!("echo through the proxy C={concurrency} (vs the mock direct)"),
            Self::Loop {
                kind: Loop::Echo,
                concurrency,
                servers: (_, Server::Forwarded),
                ..
            } => format!("echo through a byte forwarder C={concurrency} (vs the mock direct)"),
            Self::Loop {
                kind: Loop::Echo,
                concurrency,
                ..
            } => format!("echo C={concurrency}"),
            Self::Loop {
                kind: Loop::Turn,
                concurrency,
                ..
            } => format!("turn C={concurrency} (mock only)"),
            Self::Loop {
                kind: Loop::Http,
                concurrency,
                ..
            } => format!("http C={concurrency} (token endpoint vs static route)"),
            Self::Idle {
                sessions,
                warmup: Warmup::Heartbeat,
                ..
            } => format!("idle {sessions} sessions (replay + one heartbeat)"),
            Self::Idle { sessions, .. } => {
                format!("full {sessions} sessions (join + one turn; reference: one echo)")
            }
            Self::Startup { .. } => "startup".to_owned(),
        }
    }

    pub async fn run(
        self,
        bins: &Binaries,
        progress: &Progress,
        client_threads: Option<usize>,
    ) -> anyhow::Result<Comparison> {
        let name = self.name();
        let (pairs, goals) = match &self {
            Self::Loop { pairs, goals, .. }
            | Self::Idle { pairs, goals, .. }
            | Self::Startup { pairs, goals } => (*pairs, goals.clone()),
        };
        let mut comparison = Comparison::new(name.clone(), goals);
        let pair;
        let servers: &[Server] = match &self {
            Self::Loop {
                kind: Loop::Turn, ..
            } => &[Server::Mock],
            Self::Loop { servers, .. } => {
                (comparison.baseline, comparison.subject) = *servers;
                pair = [servers.0, servers.1];
                &pair
            }
            _ => &[Server::Reference, Server::Mock],
        };
        for pair in 1..=pairs.max(1) {
            for &server in servers {
                let label = format!("{name} [{} {pair}/{pairs}]", server.label());
                progress.line(&format!("{label}: starting"));
                let sample = match &self {
                    Self::Loop {
                        kind,
                        concurrency,
                        tls,
                        window,
                        ..
                    } => {
                        load::closed_loop(
                            server,
                            bins,
                            (*kind, *tls),
                            *concurrency,
                            client_threads.unwrap_or_else(|| load::client_threads(*concurrency)),
                            *window,
                            progress,
                            &label,
                        )
                        .await
                    }
                    Self::Idle {
                        sessions, warmup, ..
                    } => load::idle(server, bins, *sessions, *warmup, progress).await,
                    Self::Startup { .. } => load::startup(server, bins).await,
                }
                .with_context(|| label.clone())?;
                comparison.samples.push(sample);
            }
        }
        Ok(comparison)
    }
}
