//! A VirusTotal stand-in on 127.0.0.1: answers `GET /api/v3/files/{hash}` the way
//! API v3 does (file reports, 404 NotFoundError, 401, 429 with Retry-After, 503,
//! slow answers, truncated or non-JSON bodies), as scripted per hash, and records
//! every request it receives. Plain std: one thread per connection,
//! `Connection: close`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with a file report and these `last_analysis_stats`.
    Found { malicious: u32, suspicious: u32, undetected: u32, harmless: u32 },
    /// 404 NotFoundError.
    NotFound,
    /// Any status with VirusTotal's error body.
    Status(u16, &'static str),
    /// 429 QuotaExceededError, with `Retry-After` when given.
    RateLimited(Option<u64>),
    /// Waits, then replies.
    Slow(Duration, Box<Reply>),
    /// 200 whose JSON is cut in the middle.
    Truncated,
    /// 200 with an HTML body.
    Garbage,
    /// Closes the connection without a word.
    Reset,
    /// A valid report, one byte every 50 ms.
    Drip,
    /// 200 announcing a 2 GB body, and streaming it for as long as it is read.
    Huge,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub hash: String,
    pub api_key: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    by_hash: HashMap<String, Reply>,
    default: Option<Reply>,
    /// Replies used before anything else, in order, whatever the hash.
    script: VecDeque<Reply>,
    requests: Vec<Request>,
    /// When set, any other key gets a 401.
    key: Option<String>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: (usize, usize),
}

pub struct StandIn {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl StandIn {
    /// Starts a stand-in whose default reply is `default`.
    pub fn start(default: Reply) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State { default: Some(default), ..Default::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let st = st.clone();
                        std::thread::spawn(move || serve(conn, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        StandIn { port, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, hash: &str, reply: Reply) {
        self.state.lock().unwrap().by_hash.insert(hash.to_string(), reply);
    }

    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    /// Answers 401 to any request whose `x-apikey` is not `key`.
    pub fn require_key(&self, key: &str) {
        self.state.lock().unwrap().key = Some(key.to_string());
    }

    /// The next replies, in order, whatever is asked.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The most requests that were ever being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().in_flight.1
    }

    pub fn asked(&self, hash: &str) -> usize {
        self.requests().iter().filter(|r| r.hash == hash).count()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    conn.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut api_key = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':')
            && name.eq_ignore_ascii_case("x-apikey")
        {
            api_key = Some(value.trim().to_string());
        }
    }
    let hash = path.strip_prefix("/api/v3/files/").unwrap_or("").to_string();
    let reply = {
        let mut s = state.lock().unwrap();
        let wrong_key = s.key.is_some() && s.key != api_key;
        s.requests.push(Request { hash: hash.clone(), api_key, at: Instant::now() });
        s.in_flight.0 += 1;
        s.in_flight.1 = s.in_flight.1.max(s.in_flight.0);
        if wrong_key {
            Reply::Status(401, "Unauthorized")
        } else {
            match s.script.pop_front() {
                Some(r) => r,
                None => s.by_hash.get(&hash).or(s.default.as_ref()).cloned().unwrap_or(Reply::NotFound),
            }
        }
    };
    let reply = waited(reply);
    // Counted out before the answer goes: the client may send its next request
    // as soon as it has read this one, and must not find this one still counted.
    state.lock().unwrap().in_flight.0 -= 1;
    respond(&mut conn, &hash, reply);
}

/// The reply once its `Slow` waits are over.
fn waited(reply: Reply) -> Reply {
    match reply {
        Reply::Slow(wait, then) => {
            std::thread::sleep(wait);
            waited(*then)
        }
        r => r,
    }
}

fn respond(conn: &mut TcpStream, hash: &str, reply: Reply) {
    let error = |code: &str, msg: &str| format!(r#"{{"error": {{"code": "{code}", "message": "{msg}"}}}}"#);
    let (status, reason, body, extra) = match reply {
        Reply::Slow(..) => unreachable!("serve waits first"),
        Reply::Found { malicious, suspicious, undetected, harmless } => (
            200,
            "OK",
            format!(
                r#"{{"data": {{"id": "{hash}", "type": "file", "links": {{"self": "https://www.virustotal.com/api/v3/files/{hash}"}},
                 "attributes": {{"last_analysis_stats": {{"harmless": {harmless}, "malicious": {malicious},
                   "suspicious": {suspicious}, "undetected": {undetected}, "timeout": 0, "confirmed-timeout": 0,
                   "failure": 0, "type-unsupported": 3}},
                 "last_analysis_results": {{"EngineA": {{"category": "malicious", "engine_name": "EngineA", "result": "Trojan.Generic"}}}},
                 "last_analysis_date": 1510680277, "sha256": "{hash}", "size": 42, "reputation": -3,
                 "type_description": "Win32 EXE", "names": ["x.exe"], "times_submitted": 3}}}}}}"#
            ),
            String::new(),
        ),
        Reply::NotFound => (404, "Not Found", error("NotFoundError", "File not found"), String::new()),
        Reply::Status(code, reason) => (code, reason, error("Error", reason), String::new()),
        Reply::RateLimited(after) => (
            429,
            "Too Many Requests",
            error("QuotaExceededError", "Quota exceeded"),
            after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default(),
        ),
        Reply::Reset => {
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
        Reply::Drip => {
            let body = format!(
                r#"{{"data": {{"id": "{hash}", "attributes": {{"last_analysis_stats": {{"undetected": 60}}}}}}}}"#
            );
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            for b in body.bytes() {
                if conn.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        Reply::Huge => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\nConnection: close\r\n\r\n";
            let _ = conn.write_all(head.as_bytes());
            let chunk = vec![b' '; 64 << 10];
            for _ in 0..(2_000_000_000 / chunk.len()) {
                if conn.write_all(&chunk).is_err() {
                    return; // the client stopped reading: what fimvt should do
                }
            }
            return;
        }
        Reply::Truncated => {
            (200, "OK", format!(r#"{{"data": {{"id": "{hash}", "attributes": {{"last_analysis_st"#), String::new())
        }
        Reply::Garbage => (200, "OK", "<html><body>Bad gateway</body></html>".to_string(), String::new()),
    };
    // A proxy's error page comes as HTML: the wrong content type as well as the wrong body.
    let content_type = if body.starts_with('<') { "text/html" } else { "application/json" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
}
