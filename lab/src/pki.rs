//! Test certificates made with openssl: a CA, a server certificate for 127.0.0.1, one that names
//! no host (as MySQL's auto-generated ones), one for 127.0.0.1 from an unrelated CA, a client
//! certificate, and the unrelated CA.

use crate::TempDir;
use std::path::PathBuf;
use std::process::Command;

/// The certificates, in a temporary directory.
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    /// Makes the certificates.
    pub fn generate() -> Pki {
        let dir = TempDir::new("pki");
        let sh = |script: &str| {
            let out = Command::new("sh").arg("-ec").arg(script).current_dir(&dir.0).output().expect("openssl (run `make deps`)");
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        };
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=lab-ca 2>/dev/null");
        sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other-ca 2>/dev/null");
        for (name, cn, ext, ca) in [
            ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1", "ca"),
            ("client", "checker", "extendedKeyUsage=clientAuth", "ca"),
            ("nosan", "MySQL_Server_9.7.4_Auto_Generated_Server_Certificate", "basicConstraints=CA:FALSE", "ca"),
            ("foreign", "127.0.0.1", "subjectAltName=IP:127.0.0.1", "other-ca"),
        ] {
            sh(&format!(
                "openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={cn} 2>/dev/null
                 printf '%s\\n' '{ext}' > {name}.ext
                 openssl x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial -out {name}.crt -days 2 -extfile {name}.ext 2>/dev/null
                 chmod 600 {name}.key"
            ));
        }
        Pki { dir }
    }
    /// Path of one file (`ca.crt`, `server.key`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// The same, as an argument.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}
