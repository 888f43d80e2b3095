#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mpanel_services::tls::install_crypto_provider();
    mpanel::cli::main()
}
