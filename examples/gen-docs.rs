//! Writes the man pages and shell completions into the directory given (`make docs`).
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "target/docs".into());
    match consul_db_checks::docs::write_docs(std::path::Path::new(&dir)) {
        Ok(files) => println!("{} files written in {dir}", files.len()),
        Err(e) => {
            eprintln!("gen-docs: {e:#}");
            std::process::exit(2);
        }
    }
}
