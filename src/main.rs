#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Locations and backtraces help us, not an operator whose inventory has a typo.
    let hooks = color_eyre::config::HookBuilder::default()
        .display_location_section(false)
        .display_env_section(false)
        .install();
    if let Err(e) = hooks {
        eprintln!("kbz: cannot install error hooks: {e}");
    }
    let cli = keybuzz_console::cli::Cli::parse();
    match keybuzz_console::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A user error gets its message and causes, never a backtrace, even when
            // RUST_BACKTRACE is set in the operator's shell.
            let mut chain = e.chain();
            if let Some(top) = chain.next() {
                eprintln!("kbz: error: {top}");
            }
            for cause in chain {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
