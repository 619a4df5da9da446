//! The `divvi` command: a thin layer over the library. Parses arguments, loads the party's
//! config, shows progress, and prints what happened.

mod cli;

fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            cli::error_exit_code(&e)
        }
    }
}
