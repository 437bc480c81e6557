//! `messaging-conformance`: the conformance kit's command line.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::coverage::CoverageArgs;
use cli::driver::DriverArgs;
use cli::list::ListArgs;
use cli::run::RunArgs;
use cli::schemas::GenerateSchemasArgs;

/// Grades a Messaging API client SDK against the protocol's client obligations (spec §11).
///
/// `run --driver "<command>"` runs the case catalogue against your driver (see
/// conformance/README.md): each case starts its own mock in-process, launches the driver in a
/// fresh working directory, plays what the user does, and grades what the client did and
/// showed. Numbers and texts are drawn from the run's seed (printed; `--seed` reproduces).
/// Exit status 1 when a MUST is broken, a MUST was never graded, or the driver broke (and with
/// --strict, when a SHOULD is broken); 130 when interrupted (SIGINT or SIGTERM: the drivers are
/// stopped, their working directories removed, no report written).
#[derive(Debug, Parser)]
#[command(name = "messaging-conformance", version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("GIT_REV"), ")"), about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Print the case catalogue and which obligations each case grades.
    List(ListArgs),
    /// Run the catalogue against a driver (or the reference client).
    Run(RunArgs),
    /// Print the spec-coverage matrix: every server behaviour a client must handle, by how it
    /// reaches the client, marked with what a profile's cases exercise. Computed by running
    /// the profile with the reference client (in-process, every case at once) and reading the
    /// evidence; takes as long as the profile's longest case.
    Coverage(CoverageArgs),
    /// Act as a driver (contract §1–§6) for the reference client: read commands on stdin,
    /// answer on stdout. An example of a complete driver, and what the kit tests itself with.
    Driver(DriverArgs),
    /// Write schemas/conformance/ (the case file and the driver view) from the kit's types.
    GenerateSchemas(GenerateSchemasArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        CliCommand::List(args) => cli::list::run(args),
        CliCommand::Run(args) => cli::run::run(args),
        CliCommand::Coverage(args) => cli::coverage::run(args),
        CliCommand::Driver(args) => cli::driver::run(args),
        CliCommand::GenerateSchemas(args) => cli::schemas::run(args),
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("messaging-conformance: {error:#}");
        ExitCode::FAILURE
    })
}
