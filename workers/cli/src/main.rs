//! `stella`: the command-line shell over the scan engine crates (see the `stella_cli` library).

fn main() -> std::process::ExitCode {
    stella_cli::stella()
}
