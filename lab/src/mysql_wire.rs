//! The MySQL wire format for fake servers: framing packets (3-byte length, sequence id) and reading
//! them, bounded.

use std::io::Read;
use std::net::TcpStream;

/// One packet: `payload` framed with its length and the sequence id `seq`.
pub fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len() as u32;
    let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    p.extend_from_slice(payload);
    p
}

/// Reads one packet (its sequence id and payload, at most 1 MiB kept); `None` when the peer closed
/// or the read timed out.
pub fn read_packet(c: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    c.read_exact(&mut h).ok()?;
    let n = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
    let mut body = vec![0u8; n.min(1 << 20)];
    c.read_exact(&mut body).ok()?;
    Some((h[3], body))
}
