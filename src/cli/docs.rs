//! `divvi completions SHELL` and `divvi man --out DIR`: what a shell and `man` need,
//! generated from the command line's own definition, so they never drift from it.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete in (bash: `source <(divvi completions bash)`, or write it to
    /// /etc/bash_completion.d/divvi).
    shell: clap_complete::Shell,
}

#[derive(Args)]
pub(super) struct ManArgs {
    /// Folder to write the pages to: divvi.1, and divvi-COMMAND.1 for each command
    /// (`man -l DIR/divvi.1` reads one; put DIR in MANPATH's man1 for `man divvi`).
    #[arg(long)]
    out: PathBuf,
}

pub(super) fn completions_command(a: CompletionsArgs) -> Result<ExitCode> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut command, "divvi", &mut script);
    super::emit(&String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}

pub(super) fn man_command(a: ManArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let command = super::Cli::command();
    clap_mangen::generate_to(command, &a.out)
        .with_context(|| format!("writing man pages to {}", a.out.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(&a.out)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".1"))
        .collect();
    pages.sort();
    out!("{}", serde_json::json!({ "folder": a.out, "pages": pages }));
    Ok(ExitCode::SUCCESS)
}
