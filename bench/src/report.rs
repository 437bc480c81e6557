//! Samples, their medians and per-pair ratios, the targets of the benchmark issue, and the
//! two outputs: a table for people and `--json` for tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::proc::Server;

/// What one fresh server process measured.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub server: Server,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub metrics: BTreeMap<String, f64>,
}

impl Sample {
    pub fn new(server: Server, errors: u64, first_error: Option<String>) -> Self {
        Self {
            server,
            errors,
            first_error,
            metrics: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, metric: &str, value: f64) {
        self.metrics.insert(metric.to_owned(), value);
    }
}

/// The median; the mean of the middle two for an even count. `NaN` when empty.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// One metric across a comparison's samples.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub metric: String,
    pub reference: Option<f64>,
    pub mock: Option<f64>,
    /// Median of the per-pair ratios mock / reference, and their range.
    pub ratio: Option<f64>,
    pub ratio_min: Option<f64>,
    pub ratio_max: Option<f64>,
}

/// A target of the issue, checked against a comparison's summary.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Goal {
    /// Median ratio mock / reference at least this.
    RatioAtLeast { metric: &'static str, value: f64 },
    /// Median ratio mock / reference at most this.
    RatioAtMost { metric: &'static str, value: f64 },
    /// The mock's median at most this.
    MockAtMost { metric: &'static str, value: f64 },
    /// Median over pairs of (mock − reference) at most this (an added latency).
    AddedAtMost { metric: &'static str, value: f64 },
    /// No sample of the mock had an error.
    NoErrors,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub goal: Goal,
    pub text: String,
    pub measured: Option<f64>,
    pub met: bool,
}

/// Reference and mock samples of one configuration (interleaved R, M, R, M, …).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub name: String,
    /// The two sides: the `reference` and `mock` columns and ratios are these servers'
    /// (the proxy comparison: the mock direct, then through the proxy).
    pub baseline: Server,
    pub subject: Server,
    pub samples: Vec<Sample>,
    pub summary: Vec<Summary>,
    pub verdicts: Vec<Verdict>,
    #[serde(skip)]
    goals: Vec<Goal>,
}

impl Comparison {
    pub fn new(name: impl Into<String>, goals: Vec<Goal>) -> Self {
        Self {
            name: name.into(),
            baseline: Server::Reference,
            subject: Server::Mock,
            samples: Vec::new(),
            summary: Vec::new(),
            verdicts: Vec::new(),
            goals,
        }
    }

    fn of(&self, server: Server) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.server == server)
    }

    /// Computes medians, ratios and verdicts from the samples.
    pub fn finish(&mut self) {
        let metrics: Vec<String> = {
            let mut names: Vec<String> = Vec::new();
            for sample in &self.samples {
                for name in sample.metrics.keys() {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
            names.push("errors".into());
            names
        };
        let value = |s: &Sample, metric: &str| {
            if metric == "errors" {
                Some(s.errors as f64)
            } else {
                s.metrics.get(metric).copied()
            }
        };
        self.summary = metrics
            .iter()
            .map(|metric| {
                let column = |server| {
                    let mut values: Vec<f64> =
                        self.of(server).filter_map(|s| value(s, metric)).collect();
                    (!values.is_empty()).then(|| median(&mut values))
                };
                let mut ratios: Vec<f64> = self
                    .of(self.baseline)
                    .zip(self.of(self.subject))
                    .filter_map(|(r, m)| Some((value(r, metric)?, value(m, metric)?)))
                    .filter(|(r, _)| *r > 0.0)
                    .map(|(r, m)| m / r)
                    .collect();
                let (min, max) =
                    ratios
                        .iter()
                        .fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), &x| {
                            (
                                Some(lo.map_or(x, |v| v.min(x))),
                                Some(hi.map_or(x, |v| v.max(x))),
                            )
                        });
                Summary {
                    metric: metric.clone(),
                    reference: column(self.baseline),
                    mock: column(self.subject),
                    ratio: (!ratios.is_empty()).then(|| median(&mut ratios)),
                    ratio_min: min,
                    ratio_max: max,
                }
            })
            .collect();
        self.verdicts = self.goals.iter().map(|goal| self.judge(*goal)).collect();
    }

    fn summary_of(&self, metric: &str) -> Option<&Summary> {
        self.summary.iter().find(|s| s.metric == metric)
    }

    fn judge(&self, goal: Goal) -> Verdict {
        let (text, measured, met) = match goal {
            Goal::RatioAtLeast { metric, value } => {
                let ratio = self.summary_of(metric).and_then(|s| s.ratio);
                (
                    format!("{metric} ≥ {value} × {}", self.baseline.label()),
                    ratio,
                    ratio.is_some_and(|r| r >= value),
                )
            }
            Goal::RatioAtMost { metric, value } => {
                let ratio = self.summary_of(metric).and_then(|s| s.ratio);
                (
                    format!("{metric} ≤ {value} × {}", self.baseline.label()),
                    ratio,
                    ratio.is_some_and(|r| r <= value),
                )
            }
            Goal::MockAtMost { metric, value } => {
                let mock = self.summary_of(metric).and_then(|s| s.mock);
                (
                    format!("{metric} ≤ {value}"),
                    mock,
                    mock.is_some_and(|m| m <= value),
                )
            }
            Goal::AddedAtMost { metric, value } => {
                let mut added: Vec<f64> = self
                    .of(self.baseline)
                    .zip(self.of(self.subject))
                    .filter_map(|(b, s)| Some(s.metrics.get(metric)? - b.metrics.get(metric)?))
                    .collect();
                let added = (!added.is_empty()).then(|| median(&mut added));
                (
                    format!(
                        "{metric} + {value} at most (added to the {})",
                        self.baseline.label()
                    ),
                    added,
                    added.is_some_and(|a| a <= value),
                )
            }
            Goal::NoErrors => {
                let errors: u64 = self.of(self.subject).map(|s| s.errors).sum();
                let any = self.of(self.subject).next().is_some();
                (
                    "0 errors".to_owned(),
                    Some(errors as f64),
                    any && errors == 0,
                )
            }
        };
        Verdict {
            goal,
            text,
            measured,
            met,
        }
    }

    /// The table for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let pairs = self.of(self.subject).count();
        let (baseline, subject) = (self.baseline.label(), self.subject.label());
        let _ = writeln!(
            out,
            "{} ({pairs} {subject} sample{})",
            self.name,
            if pairs == 1 { "" } else { "s" }
        );
        let short = |label: &str| if label == "reference" { "ref" } else { label }.to_owned();
        let _ = writeln!(
            out,
            "  {:<22} {:>12} {:>12} {:>26}",
            "metric",
            baseline,
            subject,
            format!("{}/{} median (min–max)", subject, short(baseline))
        );
        for s in &self.summary {
            let ratio = match (s.ratio, s.ratio_min, s.ratio_max) {
                (Some(r), Some(lo), Some(hi)) => format!("{r:.2} ({lo:.2}–{hi:.2})"),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "  {:<22} {:>12} {:>12} {:>26}",
                s.metric,
                number(s.reference),
                number(s.mock),
                ratio
            );
        }
        for v in &self.verdicts {
            let _ = writeln!(
                out,
                "  target {:<40} measured {:>10}  {}",
                v.text,
                number(v.measured),
                if v.met { "met" } else { "MISSED" }
            );
        }
        for sample in &self.samples {
            if let Some(error) = &sample.first_error {
                let _ = writeln!(out, "  first error ({}): {error}", sample.server.label());
            }
        }
        out
    }
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(server: Server, rate: f64, errors: u64) -> Sample {
        let mut s = Sample::new(server, errors, None);
        s.set("msgs_per_s", rate);
        s
    }

    #[test]
    fn median_handles_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn ratios_are_per_pair_and_goals_judge_them() {
        let mut c = Comparison::new(
            "echo",
            vec![
                Goal::RatioAtLeast {
                    metric: "msgs_per_s",
                    value: 0.75,
                },
                Goal::RatioAtMost {
                    metric: "msgs_per_s",
                    value: 0.5,
                },
                Goal::NoErrors,
            ],
        );
        // Pairs: 80/100 = 0.8, 45/50 = 0.9, 70/100 = 0.7 → median 0.8, range 0.7–0.9.
        for (r, m) in [(100.0, 80.0), (50.0, 45.0), (100.0, 70.0)] {
            c.samples.push(sample(Server::Reference, r, 0));
            c.samples.push(sample(Server::Mock, m, 0));
        }
        c.samples[5].errors = 2;
        c.finish();
        let s = c.summary_of("msgs_per_s").expect("summary");
        assert_eq!(s.reference, Some(100.0));
        assert_eq!(s.mock, Some(70.0));
        assert!((s.ratio.expect("ratio") - 0.8).abs() < 1e-9);
        assert!((s.ratio_min.expect("min") - 0.7).abs() < 1e-9);
        assert!((s.ratio_max.expect("max") - 0.9).abs() < 1e-9);
        let met: Vec<bool> = c.verdicts.iter().map(|v| v.met).collect();
        assert_eq!(met, [true, false, false]);
        assert!(c.render().contains("MISSED"));
    }

    #[test]
    fn a_goal_without_data_is_not_met() {
        let mut c = Comparison::new(
            "turn",
            vec![
                Goal::MockAtMost {
                    metric: "p99_us",
                    value: 1.0,
                },
                Goal::NoErrors,
            ],
        );
        c.finish();
        assert!(c.verdicts.iter().all(|v| !v.met));
    }
}
