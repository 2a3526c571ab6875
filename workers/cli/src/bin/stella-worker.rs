//! `stella-worker`: the scan an operator's Job runs (see `stella_cli::worker`).

fn main() -> std::process::ExitCode {
    stella_cli::worker::main()
}
