//! Fake upstreams: tiny HTTP servers on their own threads that answer every request
//! with 200 and a body naming themselves (and the path they saw), `/health` included.
//! Paths containing `/slow` are answered after one second; paths containing
//! `/echo-headers` are answered with the request's header lines, as received; paths
//! containing `/big` with 8 KiB of text (JSON, or what `?type=` names).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running fake upstream; stops accepting when dropped.
pub struct FakeUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    status: Arc<AtomicU16>,
    data_status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

impl FakeUpstream {
    /// Starts one named `name` on a free port.
    pub fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake upstream");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(AtomicU16::new(200));
        let data_status = Arc::new(AtomicU16::new(0));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h, n) = (stop.clone(), hits.clone(), name.to_string());
        let st = (status.clone(), data_status.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (st, h, n) = (st.clone(), h.clone(), n.clone());
                        std::thread::spawn(move || serve(stream, &n, &st, &h));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            stop,
            status,
            data_status,
            hits,
        }
    }

    /// Answer every request (health checks too) with `status` from now on.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Answer requests other than `/health` with `status` (0: as [`Self::set_status`]),
    /// so health checks pass while traffic fails.
    pub fn set_data_status(&self, status: u16) {
        self.data_status.store(status, Ordering::Relaxed);
    }

    /// Requests served other than `/health`.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: TcpStream,
    name: &str,
    status: &(Arc<AtomicU16>, Arc<AtomicU16>),
    hits: &AtomicUsize,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let mut content_length = 0usize;
        let mut chunked = false;
        let mut header_lines = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            header_lines.push_str(&line);
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                if n.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        if chunked {
            if !skip_chunked_body(&mut reader) {
                return;
            }
        } else {
            let mut body = vec![0u8; content_length];
            if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
                return;
            }
        }
        if !path.starts_with("/health") {
            hits.fetch_add(1, Ordering::Relaxed);
        }
        if path.contains("/slow") {
            std::thread::sleep(Duration::from_secs(1));
        }
        let data = status.1.load(Ordering::Relaxed);
        let code = if data != 0 && !path.starts_with("/health") {
            data
        } else {
            status.0.load(Ordering::Relaxed)
        };
        let payload = if path.contains("/echo-headers") {
            header_lines
        } else if path.contains("/big") {
            format!("{name} {path} ").repeat(8192 / (name.len() + path.len() + 2) + 1)
        } else {
            format!("{name} {path}")
        };
        let content_type = match path.split_once("?type=") {
            Some((_, kind)) => kind.replace("%2F", "/"),
            None if path.contains("/big") => "application/json".to_string(),
            None => "text/plain".to_string(),
        };
        let response = format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nContent-Type: {content_type}\r\n\r\n{payload}",
            payload.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads (and drops) a chunked body up to its last chunk and trailers; false when the
/// stream ends or breaks first.
fn skip_chunked_body(reader: &mut BufReader<TcpStream>) -> bool {
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
            return false;
        }
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return false;
        };
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return false;
                }
                if line == "\r\n" {
                    return true;
                }
            }
        }
        let mut chunk = vec![0u8; size + 2];
        if std::io::Read::read_exact(reader, &mut chunk).is_err() {
            return false;
        }
    }
}
