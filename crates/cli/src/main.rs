//! The `axonflow` binary.

/// mimalloc rather than the system allocator: a policy decision allocates a few hundred small values, and
/// with glibc's malloc that is over a tenth of its time (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
