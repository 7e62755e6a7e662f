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
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
