//! The password and `caching_sha2_password` full authentication, against a fake server that speaks
//! the real protocol and plays the man in the middle: it asks for full authentication, offers its
//! own RSA key when asked, and decrypts whatever comes back (RSA-OAEP with its private key, then the
//! XOR with the nonce, as MySQL does). What it recovers is what an attacker would.
//!
//! By default the check sends nothing recoverable and says why, naming the ways out; a pinned key
//! sends the password to that key's holder only; `--get-server-public-key` (the documented, insecure
//! opt-in) gives the password to whoever answers.

use lab::mysql_wire::{packet, read_packet};
use lab::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

const SECRET: &str = "Sup3r-secret-monitor-pw";
const NONCE: &[u8; 20] = b"abcdefghijklmnopqrst";

/// How the fake leads the client into full authentication.
#[derive(Clone, Copy, Debug)]
enum Lead {
    /// Greets with `caching_sha2_password` (MySQL 8.0+), answers the scramble with "perform full
    /// authentication".
    Sha2Greeting,
    /// Greets with `mysql_native_password` (as MariaDB or an old MySQL would), then switches the
    /// client to `caching_sha2_password` (AuthSwitchRequest) and asks for full authentication.
    SwitchFromNative,
}

/// What the client did once asked for full authentication.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// Nothing of the password: it closed the connection, or said goodbye (`COM_QUIT`).
    Nothing,
    /// It sent a payload without asking for a key (a pinned key); the fake's decryption of it.
    WithoutAsking(Option<String>),
    /// It asked for the server's key, got the fake's, and sent this (decrypted) password.
    AfterAskingForTheKey(Option<String>),
}

fn greeting(plugin: &str) -> Vec<u8> {
    let mut g = vec![0x0a];
    g.extend_from_slice(b"8.4.3\0");
    g.extend_from_slice(&[1, 0, 0, 0]);
    g.extend_from_slice(&NONCE[..8]);
    g.push(0);
    g.extend_from_slice(&[0x0f, 0xa2, 0x21, 0x02, 0x00, 0x0b, 0x00, 21]);
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(&NONCE[8..]);
    g.push(0);
    g.extend_from_slice(plugin.as_bytes());
    g.push(0);
    g
}

/// The fake's RSA key pair (made with openssl).
struct KeyPair {
    dir: TempDir,
}

impl KeyPair {
    fn generate(tag: &str) -> KeyPair {
        let dir = TempDir::new(tag);
        let sh = |script: &str| {
            let out = std::process::Command::new("sh").arg("-ec").arg(script).current_dir(&dir.0).output().expect("openssl (make deps)");
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        };
        sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out private.pem 2>/dev/null
            openssl pkey -in private.pem -pubout -out public.pem
            chmod 644 public.pem");
        KeyPair { dir }
    }
    fn public_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("public.pem")).unwrap()
    }
    fn public_path(&self) -> String {
        self.dir.join("public.pem").display().to_string()
    }
    /// RSA-OAEP decryption with the private key, then MySQL's XOR with the nonce; `None` when the
    /// payload was not encrypted to this key.
    fn recover(&self, encrypted: &[u8], nonce: &[u8]) -> Option<String> {
        let input = self.dir.join("encrypted.bin");
        std::fs::write(&input, encrypted).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkeyutl", "-decrypt", "-pkeyopt", "rsa_padding_mode:oaep", "-inkey"])
            .arg(self.dir.join("private.pem"))
            .arg("-in")
            .arg(&input)
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        let plain: Vec<u8> = out.stdout.iter().enumerate().map(|(i, b)| b ^ nonce[i % nonce.len()]).collect();
        Some(String::from_utf8_lossy(plain.strip_suffix(&[0]).unwrap_or(&plain)).into_owned())
    }
}

/// A fake server that leads one client into full authentication and reports what it sent.
fn man_in_the_middle(lead: Lead, keys: std::sync::Arc<KeyPair>) -> (u16, mpsc::Receiver<Sent>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = listener.accept() else { return };
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let plugin = match lead {
            Lead::Sha2Greeting => "caching_sha2_password",
            Lead::SwitchFromNative => "mysql_native_password",
        };
        c.write_all(&packet(0, &greeting(plugin))).unwrap();
        let Some((mut seq, _response)) = read_packet(&mut c) else { return };
        // After a switch, MySQL's nonce is the one the AuthSwitchRequest carries.
        let nonce: &[u8] = NONCE;
        if let Lead::SwitchFromNative = lead {
            let mut switch = vec![0xfe];
            switch.extend_from_slice(b"caching_sha2_password\0");
            switch.extend_from_slice(nonce);
            switch.push(0);
            c.write_all(&packet(seq + 1, &switch)).unwrap();
            let Some((s, _scramble)) = read_packet(&mut c) else { return };
            seq = s;
        }
        c.write_all(&packet(seq + 1, &[0x01, 0x04])).unwrap();
        let denied = |c: &mut TcpStream, seq: u8| {
            let _ = c.write_all(&packet(seq + 1, b"\xff\x15\x04#28000Access denied for user 'monitor'"));
        };
        let sent = match read_packet(&mut c) {
            None => Sent::Nothing,
            Some((_, body)) if body == [0x01] => Sent::Nothing,
            Some((s, body)) if body == [0x02] => {
                let mut key = vec![0x01];
                key.extend_from_slice(&keys.public_pem());
                c.write_all(&packet(s + 1, &key)).unwrap();
                match read_packet(&mut c) {
                    Some((s, encrypted)) => {
                        denied(&mut c, s);
                        Sent::AfterAskingForTheKey(keys.recover(&encrypted, nonce))
                    }
                    None => Sent::AfterAskingForTheKey(None),
                }
            }
            Some((s, body)) => {
                denied(&mut c, s);
                Sent::WithoutAsking(keys.recover(&body, nonce))
            }
        };
        let _ = tx.send(sent);
    });
    (port, rx)
}

fn run_against(bin: &str, port: u16, extra: &[&str]) -> CheckRun {
    let mut args = vec![port.to_string(), "--user".into(), "monitor".into(), "--timeout".into(), "3s".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let r = run_env(bin, &args, &[("MYSQL_PWD", SECRET)]);
    assert!(!r.output().contains(SECRET), "{bin}: the password is in the output: {}", r.output());
    r
}

/// Every check that looks at one MySQL server, from the one list of checks.
fn mysql_checks() -> impl Iterator<Item = &'static str> {
    consul_db_checks::executables::server_checks(Some(consul_db_checks::kinds::Kind::Mysql)).map(|e| e.name)
}

/// By default, over plain TCP: nothing after the full-authentication request (no key asked for, no
/// password sent), exit 2, and a message naming the server and every way out.
#[test]
fn full_authentication_over_plain_tcp_sends_nothing_by_default() {
    let keys = std::sync::Arc::new(KeyPair::generate("mitm-default"));
    for lead in [Lead::Sha2Greeting, Lead::SwitchFromNative] {
        for bin in mysql_checks() {
            let (port, sent) = man_in_the_middle(lead, keys.clone());
            let r = run_against(bin, port, &[]);
            assert_eq!(r.code, Some(2), "{bin} {lead:?}: {}", r.stdout);
            let line = r.stdout.lines().next().unwrap_or("");
            assert!(line.contains(&format!("127.0.0.1:{port}")) && line.contains("full authentication"), "{bin} {lead:?}: {line}");
            for way in ["--server-public-key", "--tls", "--socket", "--get-server-public-key"] {
                assert!(line.contains(way), "{bin} {lead:?}: {way} not named: {line}");
            }
            assert_eq!(sent.recv_timeout(Duration::from_secs(10)).unwrap(), Sent::Nothing, "{bin} {lead:?}");
        }
    }
}

/// With the server's key pinned, the password goes out encrypted to that key, without asking the
/// server for one: the holder of the pinned key reads it, a man in the middle with another key
/// reads nothing.
#[test]
fn a_pinned_key_is_used_without_asking_the_server() {
    let real = std::sync::Arc::new(KeyPair::generate("mitm-real"));
    let attacker = std::sync::Arc::new(KeyPair::generate("mitm-attacker"));
    for lead in [Lead::Sha2Greeting, Lead::SwitchFromNative] {
        let (port, sent) = man_in_the_middle(lead, real.clone());
        let r = run_against(MYSQL_MASTER, port, &["--server-public-key", &real.public_path()]);
        assert_eq!(r.code, Some(2), "{lead:?}: {}", r.stdout);
        assert!(r.stdout.contains("Access denied"), "the server's own words: {}", r.stdout);
        assert_eq!(sent.recv_timeout(Duration::from_secs(10)).unwrap(), Sent::WithoutAsking(Some(SECRET.into())), "{lead:?}");

        let (port, sent) = man_in_the_middle(lead, attacker.clone());
        let r = run_against(MYSQL_SLAVE, port, &["--server-public-key", &real.public_path()]);
        assert_eq!(r.code, Some(2), "{lead:?}: {}", r.stdout);
        assert_eq!(sent.recv_timeout(Duration::from_secs(10)).unwrap(), Sent::WithoutAsking(None), "{lead:?}: the attacker read it");
    }
}

/// The explicit opt-in does what the documentation warns about: whoever answers gets the password.
#[test]
fn the_opt_in_trusts_whatever_key_comes_back() {
    let keys = std::sync::Arc::new(KeyPair::generate("mitm-opt-in"));
    let (port, sent) = man_in_the_middle(Lead::Sha2Greeting, keys.clone());
    let r = run_against(MYSQL_MASTER, port, &["--get-server-public-key"]);
    r.exits(2);
    assert_eq!(sent.recv_timeout(Duration::from_secs(10)).unwrap(), Sent::AfterAskingForTheKey(Some(SECRET.into())));
}

/// A pinned key that looks like one but is not (it passes the cheap check at start): the driver
/// panics parsing it when the server asks for full authentication; the check contains that and
/// names the key, and nothing is sent.
#[test]
fn a_pinned_key_the_driver_cannot_parse_ends_in_words() {
    let keys = std::sync::Arc::new(KeyPair::generate("mitm-bad-pin"));
    let dir = TempDir::new("bad-pin");
    let fake_key = dir.join("fake.pem");
    write_file(&fake_key, "-----BEGIN PUBLIC KEY-----\nMIIAAAAA\n-----END PUBLIC KEY-----\n", 0o644);
    let (port, sent) = man_in_the_middle(Lead::Sha2Greeting, keys);
    let r = run_against(MYSQL_MASTER, port, &["--server-public-key", fake_key.to_str().unwrap()]);
    r.exits(2);
    assert!(r.stdout.contains("pinned key") && r.stdout.contains(fake_key.to_str().unwrap()), "{}", r.stdout);
    assert!(!r.output().contains("panicked") && !r.output().contains("internal error"), "{}", r.output());
    assert_eq!(sent.recv_timeout(Duration::from_secs(10)).unwrap(), Sent::Nothing);
}

/// Bad key files are refused before connecting (exit 2, naming the file); a key the server sends that
/// the driver cannot read (opt-in) is an error naming the server, never a panic.
#[test]
fn bad_key_files_and_garbage_keys() {
    let dir = TempDir::new("bad-keys");
    let writable = dir.join("writable.pem");
    let keys = KeyPair::generate("bad-keys-pair");
    std::fs::write(&writable, keys.public_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).unwrap();
    let not_a_key = dir.join("cert.pem");
    write_file(&not_a_key, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0o644);
    for (path, words) in [
        (writable.display().to_string(), "writable by other users"),
        (not_a_key.display().to_string(), "not an RSA public key"),
        ("/dev/zero".into(), "not a regular file"),
        ("/nonexistent/key.pem".into(), "cannot read server public key"),
    ] {
        for bin in mysql_checks() {
            let r = run_against(bin, 9, &["--server-public-key", &path]);
            assert_eq!(r.code, Some(2), "{bin} {path}: {}", r.stdout);
            assert!(r.stdout.contains(words) && r.stdout.contains(&path), "{bin} {path}: {}", r.stdout);
        }
    }
}
