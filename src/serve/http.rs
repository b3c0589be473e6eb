//! The little HTTP that `serve-checks` speaks: one bounded request head in, one answer out, then the
//! connection closes. Pure functions, so every byte a client may send is unit and property tested.

/// The most a request head (request line and headers) may hold.
pub const MAX_HEAD: usize = 8 << 10;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (a `HEAD` answer has no body).
    pub head_only: bool,
    /// The path, undecoded (`/w-6029-redis-test`).
    pub path: String,
    /// The answer is JSON: `?format=json` or `Accept: application/json`.
    pub json: bool,
    /// `?lag=`: a tighter lag limit for a read service (`5s`, or bytes with a `B`: `16MB`), as
    /// Patroni's `/replica?lag=`.
    pub lag: Option<String>,
}

/// Why a request head is refused, with the status it is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: not an HTTP/1.x request line, or a header line that is not `name: value`.
    Malformed(&'static str),
    /// 405: a method other than GET and HEAD.
    Method,
    /// 431: the head is over [`MAX_HEAD`].
    TooLarge,
}

impl Refusal {
    /// The answer to it.
    pub fn answer(&self) -> Answer {
        match self {
            Refusal::Malformed(why) => Answer::text(400, format!("bad request: {why}\n")),
            Refusal::Method => {
                let mut a = Answer::text(405, "only GET and HEAD\n".to_string());
                a.allow = true;
                a
            }
            Refusal::TooLarge => Answer::text(431, format!("request head over {MAX_HEAD} bytes\n")),
        }
    }
}

/// Where the head ends in `buf` (just past the blank line), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

/// Parses a complete request head (request line, headers, blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, Refusal> {
    if head.len() > MAX_HEAD {
        return Err(Refusal::TooLarge);
    }
    let text = std::str::from_utf8(head).map_err(|_| Refusal::Malformed("not text"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Malformed("the request line is not METHOD TARGET HTTP/1.x"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Refusal::Malformed("not HTTP/1.0 or HTTP/1.1"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Refusal::Malformed("not a method"));
    }
    // The absolute form (`GET http://host:9200/w-... HTTP/1.1`), which RFC 9112 section 3.2.2 says a
    // server must accept (some proxies and health checkers send it): its path is the target.
    let target = match target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::Malformed("the target is not an absolute path"));
    }
    let mut accept_json = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Refusal::Malformed("a header line without ':'"));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Refusal::Malformed("a header name that is not a token"));
        }
        if name.eq_ignore_ascii_case("accept") && value.to_ascii_lowercase().contains("application/json") {
            accept_json = true;
        }
    }
    if method != "GET" && method != "HEAD" {
        return Err(Refusal::Method);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (mut json, mut lag) = (accept_json, None);
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("format", "json")) => json = true,
            Some(("lag", v)) if !v.is_empty() && lag.is_none() => lag = Some(v.to_string()),
            _ => return Err(Refusal::Malformed("a query other than format=json and one lag=")),
        }
    }
    Ok(Request { head_only: method == "HEAD", path: path.to_string(), json, lag })
}

/// One answer: status, body and its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body (a check's output, or a short explanation).
    pub body: String,
    /// `application/json` instead of `text/plain`.
    pub json: bool,
    /// Send `Allow: GET, HEAD` (a 405).
    pub allow: bool,
}

impl Answer {
    /// A plain-text answer.
    pub fn text(status: u16, body: String) -> Answer {
        Answer { status, body, json: false, allow: false }
    }

    /// The bytes on the wire: status line, headers, and the body unless `head_only`.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let kind = if self.json { "application/json" } else { "text/plain; charset=utf-8" };
        let allow = if self.allow { "Allow: GET, HEAD\r\n" } else { "" };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The reason phrase of the statuses served here.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// The status a check's exit code is served as: passing 200, warning 429 (what Consul's HTTP
/// check reads as warning), critical and anything else 503.
pub fn status_of_exit(code: Option<i32>) -> u16 {
    crate::report::Status::of_exit_code(code).http_status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_as_haproxy_consul_and_curl_send_them() {
        // HAProxy 2.6 `option httpchk GET /x`, Consul's HTTP check, curl.
        let haproxy = b"GET /w-6029-redis-test HTTP/1.0\r\n\r\n";
        assert_eq!(parse_head(haproxy), Ok(Request { head_only: false, path: "/w-6029-redis-test".into(), json: false, lag: None }));
        let consul = b"GET /r-3306-mysql-main HTTP/1.1\r\nHost: 198.18.0.11:9200\r\nUser-Agent: Consul Health Check\r\nAccept: text/plain, text/*, */*\r\nAccept-Encoding: gzip\r\n\r\n";
        assert!(!parse_head(consul).unwrap().json);
        let json = b"GET /x?format=json HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(parse_head(json).unwrap(), Request { head_only: false, path: "/x".into(), json: true, lag: None });
        let accept = b"HEAD /x HTTP/1.1\nAccept: Application/JSON\n\n";
        assert_eq!(parse_head(accept).unwrap(), Request { head_only: true, path: "/x".into(), json: true, lag: None });
        // The absolute form, as some proxies send it.
        let absolute = b"GET http://198.18.0.11:9200/w-6029-redis-test?format=json HTTP/1.1\r\nHost: 198.18.0.11:9200\r\n\r\n";
        assert_eq!(parse_head(absolute).unwrap(), Request { head_only: false, path: "/w-6029-redis-test".into(), json: true, lag: None });
        assert_eq!(parse_head(b"GET http://198.18.0.11:9200 HTTP/1.1\r\n\r\n").unwrap().path, "/");
        // Patroni's ?lag=, with format=json or alone; nothing else in the query.
        let lag = b"GET /r-6029-redis-test?lag=16MB&format=json HTTP/1.1\r\n\r\n";
        assert_eq!(parse_head(lag).unwrap().lag.as_deref(), Some("16MB"));
        for bad in ["/x?lag=", "/x?lag=1&lag=2", "/x?verbose=1", "/x?format=xml", "/x?lag"] {
            let head = format!("GET {bad} HTTP/1.1\r\n\r\n");
            assert!(matches!(parse_head(head.as_bytes()), Err(Refusal::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_head(b"POST /x HTTP/1.1\r\n\r\n"), Err(Refusal::Method));
        assert_eq!(parse_head(b"DELETE / HTTP/1.0\r\n\r\n").unwrap_err().answer().status, 405);
        for bad in [
            &b"GET /x\r\n\r\n"[..],
            b"GET /x HTTP/2.0\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"get /x HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ] {
            let r = parse_head(bad);
            assert!(matches!(r, Err(Refusal::Malformed(_))), "{:?}: {r:?}", String::from_utf8_lossy(bad));
            assert_eq!(r.unwrap_err().answer().status, 400);
        }
        assert_eq!(parse_head(&vec![b'a'; MAX_HEAD + 1]), Err(Refusal::TooLarge));
    }

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nGET /again"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    }

    #[test]
    fn answers_on_the_wire() {
        let a = Answer::text(503, "REDIS-MASTER CRITICAL: x\n".into());
        let bytes = String::from_utf8(a.to_bytes(false)).unwrap();
        assert!(
            bytes.starts_with("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 25\r\n"),
            "{bytes}"
        );
        assert!(bytes.ends_with("Connection: close\r\n\r\nREDIS-MASTER CRITICAL: x\n"), "{bytes}");
        let head = String::from_utf8(a.to_bytes(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 25"), "{head}");
        assert!(String::from_utf8(Refusal::Method.answer().to_bytes(false)).unwrap().contains("Allow: GET, HEAD\r\n"));
        assert_eq!([status_of_exit(Some(0)), status_of_exit(Some(1)), status_of_exit(Some(2)), status_of_exit(None)], [200, 429, 503, 503]);
    }
}
