//! Standard output for the command-line tools. `println!` panics when the reader has gone
//! (`messaging-mock scenarios | head`); these end the process quietly instead, with the
//! status a shell gives a program killed by SIGPIPE (141), so a pipeline with `pipefail` still
//! sees that the output was cut short.

use std::fmt;
use std::io::Write as _;

/// Status of a process whose output pipe was closed (128 + SIGPIPE).
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// Writes `args` to stdout and flushes; exits quietly when stdout is closed.
pub fn write(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    exit_on_error(out.write_fmt(args).and_then(|()| out.flush()));
}

/// Writes `bytes` to stdout and flushes (a followed journal shows each entry as it comes);
/// exits quietly when stdout is closed.
pub fn write_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    exit_on_error(out.write_all(bytes).and_then(|()| out.flush()));
}

fn exit_on_error(result: std::io::Result<()>) {
    let Err(error) = result else { return };
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE_STATUS);
    }
    eprintln!("cannot write to stdout: {error}");
    std::process::exit(1);
}

/// `print!` that ends the process quietly when stdout's reader has gone.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// `println!` that ends the process quietly when stdout's reader has gone.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}
