//! No public CA roots: the MySQL driver trusts only the CA file a check gives it (`--tls-ca`, or the
//! system bundle when none is given), never a CA list compiled into the executable.
#![no_std]
#![forbid(unsafe_code)]

use pki_types::TrustAnchor;

/// The roots the MySQL driver adds to every trust store: none.
pub const TLS_SERVER_ROOTS: &[TrustAnchor<'static>] = &[];
