//! Man pages and shell completions, generated from the same clap definitions as `--help`, so they
//! cannot drift from it (`make install` writes them; `cargo run --example gen-docs -- DIR`).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Every executable's command line.
pub fn commands() -> Vec<clap::Command> {
    crate::executables::all().map(|e| (e.command)()).collect()
}

/// Writes `man/man1/<name>.1`, `completions/bash/<name>` and `completions/zsh/_<name>` under `dir`
/// for every executable; returns the files written.
pub fn write_docs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = dir.join("man/man1");
    let bash = dir.join("completions/bash");
    let zsh = dir.join("completions/zsh");
    for d in [&man, &bash, &zsh] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    for mut cmd in commands() {
        let name = cmd.get_name().to_string();
        let page = man.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut out).context("cannot render a man page")?;
        std::fs::write(&page, out).with_context(|| format!("cannot write {}", page.display()))?;
        written.push(page);
        written.push(clap_complete::generate_to(clap_complete::Shell::Bash, &mut cmd, &name, &bash)?);
        written.push(clap_complete::generate_to(clap_complete::Shell::Zsh, &mut cmd, &name, &zsh)?);
    }
    Ok(written)
}
