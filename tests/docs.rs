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
        let page = std::fs::read_to_string(dir.join(format!("man/man1/{exe}.1"))).unwrap().replace("\\-", "-");
        let bash = std::fs::read_to_string(dir.join(format!("completions/bash/{exe}.bash"))).unwrap();
        let zsh = std::fs::read_to_string(dir.join(format!("completions/zsh/_{exe}"))).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{exe}: not a man page");
        for opt in options {
            let opt = opt.split('=').next().unwrap().split('[').next().unwrap();
            assert!(page.contains(opt), "{exe}: {opt} is in --help but not in the man page");
            assert!(bash.contains(opt) && zsh.contains(opt), "{exe}: {opt} missing from a completion");
        }
    }
}

/// The option tables of docs/checks.md and each node check's clap definition hold the same
/// options: every option of a check is in its section's table or in the table of the options
/// common to every check, and every option a check's section names is one the check has.
#[test]
fn the_option_tables_of_docs_checks_md_are_the_checks_options() {
    let doc = include_str!("../docs/checks.md");
    let section = |title: &str| -> String {
        let start = doc.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("no section {title}"));
        let rest = &doc[start + title.len() + 5..];
        rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
    };
    // The `--flags` named in the first cell of each table row.
    let flags = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| l.split('|').nth(1).unwrap_or_default().split(['`', ' ', ',']).map(str::to_string).collect::<Vec<_>>())
            .filter_map(|w| w.strip_prefix("--").map(|f| f.split('\\').next().unwrap().to_string()))
            .collect()
    };
    let common = flags(&section("Options common to every check"));
    for check in consul_db_checks::checks::node_checks() {
        let own = flags(&section(check.name));
        let clap: std::collections::BTreeSet<String> = (check.command)()
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(str::to_string))
            .filter(|l| l != "help" && l != "version")
            .collect();
        for f in &clap {
            assert!(own.contains(f) || common.contains(f), "{}: --{f} is not in docs/checks.md", check.name);
        }
        for f in &own {
            assert!(clap.contains(f), "{}: docs/checks.md names --{f}, which the check does not have", check.name);
        }
    }
}
