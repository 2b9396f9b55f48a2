//! The `axonflow` binary.

fn main() -> std::process::ExitCode {
    cli::main()
}
