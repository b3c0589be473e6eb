//! Reads the `[client]` group of a my.cnf file (`--defaults-file`), as the mysql client does:
//! comments, quoted values, `!include` and `!includedir`.

use crate::credentials::{check_private, Secret};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The `[client]` settings a check uses; later lines override earlier ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientGroup {
    /// User to log in as (`user`).
    pub user: Option<String>,
    /// Password (`password`); kept out of every output.
    pub password: Option<Secret>,
    /// Server host (`host`).
    pub host: Option<String>,
    /// Server TCP port (`port`).
    pub port: Option<u16>,
    /// Server Unix socket (`socket`), used for host `localhost`.
    pub socket: Option<PathBuf>,
    /// `ssl-ca` (implies TLS).
    pub ssl_ca: Option<PathBuf>,
    /// `ssl-mode`: `VERIFY_IDENTITY` or `VERIFY_CA` (both imply TLS); `DISABLED` and `PREFERRED` add nothing.
    pub ssl_mode: Option<super::auth::TlsVerify>,
    /// `server-public-key-path`: the pinned RSA key for `caching_sha2_password` full authentication.
    pub server_public_key: Option<PathBuf>,
    /// `get-server-public-key`: take the key the server sends (open to a man in the middle).
    pub get_server_public_key: bool,
    /// The first other group that sets `user` or `password` (`mysql` for `[mysql]`).
    pub login_elsewhere: Option<String>,
}

/// How deep `!include` may nest before we call it a loop.
const MAX_INCLUDE_DEPTH: usize = 8;

impl ClientGroup {
    /// Loads the `[client]` group of `path` (and the files it includes). A file that holds a password
    /// must not be readable by every user.
    pub fn load(path: &Path) -> Result<ClientGroup> {
        let mut group = ClientGroup::default();
        group.read_file(path, 0)?;
        Ok(group)
    }

    /// A file whose login is only in another group (`[mysql]`, `[mysqladmin]`: what the mysql client
    /// also reads), when the command line gives none either, would log in as nobody ("using
    /// password: NO"): refused, naming the file and the group.
    pub fn refuse_login_elsewhere(&self, path: &Path) -> Result<()> {
        match &self.login_elsewhere {
            Some(group) if self.user.is_none() && self.password.is_none() => bail!(
                "defaults file {} sets the login only in [{group}]: the checks read the [client] group (the one every \
                 MySQL client reads); move user and password to [client]",
                path.display()
            ),
            _ => Ok(()),
        }
    }

    /// Reads the `[client]` group from option-file text; `origin` names it in errors and anchors
    /// relative includes.
    pub fn parse(text: &str, origin: &Path) -> Result<ClientGroup> {
        let mut group = ClientGroup::default();
        group.read_text(text, origin, 0)?;
        Ok(group)
    }

    fn read_file(&mut self, path: &Path, depth: usize) -> Result<()> {
        if depth > MAX_INCLUDE_DEPTH {
            bail!("defaults file {}: !include nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)", path.display());
        }
        let bytes = crate::credentials::read_bounded(path, crate::credentials::limits::DEFAULTS_FILE, "defaults file")?;
        let text = String::from_utf8(bytes).map_err(|_| anyhow!("defaults file {} is not UTF-8 text", path.display()))?;
        if self.read_text(&text, path, depth)? {
            check_private(path, "defaults file")?;
        }
        Ok(())
    }

    /// Reads option-file text; `path` names it in errors and anchors relative includes.
    /// Returns whether this text itself (not an included file) sets a password.
    fn read_text(&mut self, text: &str, path: &Path, depth: usize) -> Result<bool> {
        let mut in_client = false;
        let mut group_name = String::new();
        let mut sets_password = false;
        for (i, raw) in text.lines().enumerate() {
            let at = || format!("defaults file {} line {}", path.display(), i + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("!includedir") {
                let dir = include_target(rest, path).with_context(at)?;
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .with_context(|| format!("{}: cannot read !includedir {}", at(), dir.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "cnf"))
                    .collect();
                files.sort();
                for f in files {
                    self.read_file(&f, depth + 1)?;
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("!include") {
                let file = include_target(rest, path).with_context(at)?;
                self.read_file(&file, depth + 1).with_context(at)?;
                continue;
            }
            if line.starts_with('[') {
                let name = line
                    .strip_prefix('[')
                    .and_then(|l| l.split_once(']'))
                    .map(|(n, _)| n.trim().to_ascii_lowercase())
                    .ok_or_else(|| anyhow!("{}: unclosed group header '{line}'", at()))?;
                in_client = name == "client";
                group_name = name;
                continue;
            }
            if !in_client {
                let key = line.split('=').next().unwrap_or_default().trim().to_ascii_lowercase();
                if (key == "user" || key == "password") && self.login_elsewhere.is_none() {
                    self.login_elsewhere = Some(group_name.clone());
                }
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), Some(unquote(v.trim()).with_context(at)?)),
                None => (strip_comment(line).trim(), None),
            };
            let key = key.replace('_', "-").to_ascii_lowercase();
            let raw = value.clone();
            let value = || value.clone().ok_or_else(|| anyhow!("{}: {key} needs a value", at()));
            match key.as_str() {
                "user" => self.user = Some(value()?),
                "password" => {
                    self.password = Some(Secret::new(value()?));
                    sets_password = true;
                }
                "host" => self.host = Some(value()?),
                "port" => {
                    let v = value()?;
                    self.port = Some(crate::cli::parse_port(&v).map_err(|e| anyhow!("{}: port {v}: {e}", at()))?);
                }
                "socket" => self.socket = Some(PathBuf::from(value()?)),
                "ssl-ca" => self.ssl_ca = Some(PathBuf::from(value()?)),
                "ssl-mode" => self.ssl_mode = super::auth::TlsVerify::from_ssl_mode(&value()?).with_context(at)?,
                "server-public-key-path" => self.server_public_key = Some(PathBuf::from(value()?)),
                "get-server-public-key" => self.get_server_public_key = option_flag(raw).with_context(at)?,
                // Not options of any MySQL client: a login that would be silently ignored.
                "passwd" | "pass" | "pwd" | "username" => {
                    bail!("{}: `{key}` is not a MySQL client option (the login options are `user` and `password`)", at())
                }
                _ => {}
            }
        }
        Ok(sets_password)
    }
}

/// The path after `!include`/`!includedir`, relative to the including file's directory.
fn include_target(rest: &str, including: &Path) -> Result<PathBuf> {
    let target = rest.trim();
    if target.is_empty() || !rest.starts_with(char::is_whitespace) {
        bail!("!include needs a path");
    }
    let p = PathBuf::from(target);
    Ok(if p.is_absolute() { p } else { including.parent().unwrap_or(Path::new(".")).join(p) })
}

/// A boolean option as the mysql client reads it: bare (`get-server-public-key`) or `=1`/`=0`,
/// `=ON`/`=OFF`, `=TRUE`/`=FALSE`.
fn option_flag(value: Option<String>) -> Result<bool> {
    match value.as_deref().map(|v| v.trim().to_ascii_uppercase()) {
        None => Ok(true),
        Some(v) if matches!(v.as_str(), "1" | "ON" | "TRUE") => Ok(true),
        Some(v) if matches!(v.as_str(), "0" | "OFF" | "FALSE") => Ok(false),
        Some(v) => bail!("'{v}' is not a boolean (1/0, ON/OFF, TRUE/FALSE)"),
    }
}

/// Strips a `#` comment from an unquoted value.
fn strip_comment(value: &str) -> &str {
    value.split_once('#').map_or(value, |(v, _)| v).trim_end()
}

/// A value as the mysql client reads it: quoted (with `\` escapes) or bare up to a `#` comment.
fn unquote(value: &str) -> Result<String> {
    let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') else {
        return Ok(strip_comment(value).to_string());
    };
    let mut out = String::new();
    let mut chars = value[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('s') => out.push(' '),
                Some(other) => out.push(other),
                None => bail!("unfinished escape in a quoted value"),
            },
            c if c == quote => {
                let rest = chars.as_str().trim();
                if !(rest.is_empty() || rest.starts_with('#')) {
                    bail!("text after a quoted value");
                }
                return Ok(out);
            }
            c => out.push(c),
        }
    }
    bail!("unclosed quote")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::{write, TempDir};

    fn dir(tag: &str) -> TempDir {
        TempDir::new(&format!("cnf-{tag}"))
    }

    #[test]
    fn client_group_with_quotes_comments_and_overrides() {
        let d = dir("basic");
        let f = d.join("my.cnf");
        write(
            &f,
            "# comment\n[mysqld]\nuser=mysql\nport=9999\n\n[client]\nuser = monitor # trailing\n\
             password = \"p#ss w\\\"d\"\n; another comment\nhost=db1\nport = 3307\nsocket=/run/mysqld/mysqld.sock\n\
             ssl_ca=/etc/ca.pem\nskip-ssl\nuser='checker'\nssl-mode=VERIFY_CA\nserver_public_key_path=/etc/mysql/key.pem\n\
             get-server-public-key\n[mysql]\nuser=nobody\nget-server-public-key=0\n",
            0o600,
        );
        let g = ClientGroup::load(&f).unwrap();
        assert_eq!(g.user.as_deref(), Some("checker"));
        assert_eq!(g.password.as_ref().unwrap().expose(), "p#ss w\"d");
        assert_eq!(g.host.as_deref(), Some("db1"));
        assert_eq!(g.port, Some(3307));
        assert_eq!(g.socket, Some(PathBuf::from("/run/mysqld/mysqld.sock")));
        assert_eq!(g.ssl_ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(g.ssl_mode, Some(super::super::auth::TlsVerify::Ca));
        assert_eq!(g.server_public_key, Some(PathBuf::from("/etc/mysql/key.pem")));
        assert!(g.get_server_public_key, "set in [client]; the [mysql] group does not count");
    }

    #[test]
    fn includes_are_followed() {
        let d = dir("inc");
        std::fs::create_dir_all(d.join("conf.d")).unwrap();
        write(&d.join("conf.d/50-client.cnf"), "[client]\npassword=fromdir\n", 0o600);
        write(&d.join("conf.d/ignored.txt"), "[client]\npassword=nope\n", 0o600);
        write(&d.join("extra.cnf"), "[client]\nuser=included\n", 0o644);
        write(&d.join("my.cnf"), "[client]\nuser=first\n!include extra.cnf\n!includedir conf.d\n", 0o644);
        let g = ClientGroup::load(&d.join("my.cnf")).unwrap();
        assert_eq!(g.user.as_deref(), Some("included"));
        assert_eq!(g.password.unwrap().expose(), "fromdir");
        write(&d.join("loop.cnf"), "!include loop.cnf\n", 0o600);
        let err = format!("{:#}", ClientGroup::load(&d.join("loop.cnf")).unwrap_err());
        assert!(err.contains("nested"), "{err}");
        write(&d.join("missing.cnf"), "!include /no/such/file.cnf\n", 0o600);
        let err = format!("{:#}", ClientGroup::load(&d.join("missing.cnf")).unwrap_err());
        assert!(err.contains("missing.cnf line 1") && err.contains("/no/such/file.cnf"), "{err}");
    }

    #[test]
    fn bad_files_are_clear_errors_without_secrets() {
        let d = dir("bad");
        let cases = [
            ("[client\nuser=x\n", "unclosed group header"),
            ("[client]\nport=abc\n", "line 2: port abc"),
            ("[client]\npassword='unclosed\n", "line 2"),
            ("[client]\nuser\n", "user needs a value"),
            ("[client]\nssl-mode=REQUIRED\n", "does not verify the server"),
            ("[client]\nget-server-public-key=maybe\n", "not a boolean"),
            ("[client]\npasswd=x\n", "line 2: `passwd` is not a MySQL client option"),
            ("[client]\nhost=db1\n[mysql]\nuser=x\npassword=y\n", "c7.cnf sets the login only in [mysql]"),
        ];
        for (i, (text, words)) in cases.iter().enumerate() {
            let f = d.join(format!("c{i}.cnf"));
            write(&f, text, 0o600);
            let err = format!("{:#}", ClientGroup::load(&f).and_then(|g| g.refuse_login_elsewhere(&f).map(|_| g)).unwrap_err());
            assert!(err.contains(words), "{text:?}: {err}");
        }
        let world = d.join("world.cnf");
        write(&world, "[client]\npassword=topsecret\n", 0o644);
        let err = format!("{:#}", ClientGroup::load(&world).unwrap_err());
        assert!(err.contains("chmod") && !err.contains("topsecret"), "{err}");
        let no_pw = d.join("nopw.cnf");
        write(&no_pw, "[client]\nuser=x\n", 0o644);
        assert!(ClientGroup::load(&no_pw).is_ok(), "a file without a password may be world-readable");
    }
}
