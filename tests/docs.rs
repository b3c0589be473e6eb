//! Man pages and completions come from the same clap definitions as `--help`: every option the
//! executable's `--help` lists is in its man page and in its bash and zsh completions.

use lab::*;

use consul_db_checks::executables;

#[test]
fn man_pages_and_completions_match_help() {
    let dir = TempDir::new("docs");
    let written = consul_db_checks::docs::write_docs(&dir.0).unwrap();
    assert_eq!(written.len(), executables::all().count() * 3);
    for exe in executables::all().map(|e| e.name) {
        let help = run(exe, ["--help"]);
        assert_eq!(help.exit(), 0, "{exe}");
        // The option lines: `  -h, --help  ...` or `      --timeout <DURATION>  ...`.
        let options: Vec<&str> = help
            .stdout
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
            .map(|w| w.trim_end_matches(','))
            .collect();
        assert!(options.len() >= 3, "{exe}: {}", help.stdout);
        let page = std::fs::read_to_string(dir.join(&format!("man/man1/{exe}.1"))).unwrap().replace("\\-", "-");
        let bash = std::fs::read_to_string(dir.join(&format!("completions/bash/{exe}.bash"))).unwrap();
        let zsh = std::fs::read_to_string(dir.join(&format!("completions/zsh/_{exe}"))).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{exe}: not a man page");
        for opt in options {
            let opt = opt.split('=').next().unwrap().split('[').next().unwrap();
            assert!(page.contains(opt), "{exe}: {opt} is in --help but not in the man page");
            assert!(bash.contains(opt) && zsh.contains(opt), "{exe}: {opt} missing from a completion");
        }
    }
}
