#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mpanel::cli::main()
}
