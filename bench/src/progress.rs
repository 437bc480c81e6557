//! The progress line on stderr: rewritten in place on a terminal, a line every few seconds
//! otherwise (CI logs), nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a non-terminal stderr gets a progress line.
const LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    terminal: bool,
    last_logged: Mutex<Option<Instant>>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            last_logged: Mutex::new(None),
        }
    }

    /// Shows `text` as the current state.
    pub fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        if self.terminal {
            eprint!("\r\x1b[K{text}");
            let _ = std::io::stderr().flush();
            return;
        }
        let Ok(mut last) = self.last_logged.lock() else {
            return;
        };
        if last.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            eprintln!("{text}");
        }
    }

    /// Ends the current state with a permanent line.
    pub fn finish(&self, text: &str) {
        if !self.enabled {
            return;
        }
        if self.terminal {
            eprintln!("\r\x1b[K{text}");
        } else {
            eprintln!("{text}");
            if let Ok(mut last) = self.last_logged.lock() {
                *last = None;
            }
        }
    }
}
