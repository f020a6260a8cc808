//! The access log: one line per request, written off the request path.
//!
//! The logging phase formats the line and offers it to a bounded channel (never
//! waiting); a background service owns the file and writes what arrives, flushing when
//! the channel runs dry. A full channel drops the line and counts it
//! (`sluice_access_log_lines_total{result="dropped"}`). SIGHUP reopens the file, so
//! logrotate can move it away. Lines hold the path without its query string, the key's
//! id (never the key), and no header that may carry a credential.

use crate::config::{AccessLogConfig, AccessLogFormat};
use crate::metrics::metrics;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::{mpsc, Notify};

/// One request, as the access log records it.
#[derive(Debug, Serialize)]
pub struct AccessLine<'a> {
    /// When the request arrived, RFC 3339 UTC.
    pub ts: String,
    /// The request id.
    pub request_id: Option<&'a str>,
    /// The client's address.
    pub client_ip: Option<&'a str>,
    /// Method.
    pub method: &'a str,
    /// Path, without the query string (which may carry secrets).
    pub path: &'a str,
    /// Status sent (0: none).
    pub status: u16,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Time to the end of the response, ms.
    pub latency_ms: f64,
    /// Route name.
    pub route: &'a str,
    /// The admitted key's id.
    pub key_id: Option<&'a str>,
    /// The peer that answered.
    pub upstream: Option<String>,
    /// `Referer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referer: Option<&'a str>,
    /// `User-Agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
}

impl AccessLine<'_> {
    /// The line in `format`, without its newline.
    pub fn render(&self, format: AccessLogFormat, at: chrono::DateTime<chrono::Utc>) -> String {
        match format {
            AccessLogFormat::Json => serde_json::to_string(self).unwrap_or_default(),
            AccessLogFormat::Combined => format!(
                "{} - {} [{}] \"{} {} HTTP/1.1\" {} {} \"{}\" \"{}\"",
                self.client_ip.unwrap_or("-"),
                self.key_id.unwrap_or("-"),
                at.format("%d/%b/%Y:%H:%M:%S +0000"),
                self.method,
                escape(self.path),
                self.status,
                self.bytes_out,
                escape(self.referer.unwrap_or("-")),
                escape(self.user_agent.unwrap_or("-")),
            ),
        }
    }
}

/// Quotes and control bytes escaped, as nginx does, so a client cannot forge lines.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The request path's end of the access log.
pub struct AccessLog {
    tx: Option<mpsc::Sender<String>>,
    rx: Mutex<Option<mpsc::Receiver<String>>>,
    config: Option<AccessLogConfig>,
    reopen: Notify,
    written: prometheus::IntCounter,
    dropped: prometheus::IntCounter,
}

impl AccessLog {
    /// The log `config` asks for (none: every call is a no-op).
    pub fn new(config: Option<&AccessLogConfig>) -> Self {
        let (tx, rx) = match config {
            Some(c) => {
                let (tx, rx) = mpsc::channel(c.queue_capacity);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let lines = &metrics().access_log_lines;
        Self {
            tx,
            rx: Mutex::new(rx),
            config: config.cloned(),
            reopen: Notify::new(),
            written: lines.with_label_values(&["written"]),
            dropped: lines.with_label_values(&["dropped"]),
        }
    }

    /// The line format, when the log is on.
    pub fn format(&self) -> Option<AccessLogFormat> {
        self.config.as_ref().map(|c| c.format)
    }

    /// Offers a rendered line to the writer; drops (and counts) it when the queue is full.
    pub fn offer(&self, line: String) {
        if let Some(tx) = &self.tx {
            if tx.try_send(line).is_err() {
                self.dropped.inc();
            }
        }
    }

    /// Asks the writer to reopen the file (SIGHUP, after logrotate moved it).
    pub fn reopen(&self) {
        self.reopen.notify_one();
    }
}

/// Writes the access log's lines to its file.
pub struct AccessLogService {
    log: std::sync::Arc<AccessLog>,
}

impl AccessLogService {
    /// The writer for `log`.
    pub fn new(log: std::sync::Arc<AccessLog>) -> Self {
        Self { log }
    }
}

fn open(path: &PathBuf) -> Option<std::io::BufWriter<std::fs::File>> {
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(file) => Some(std::io::BufWriter::with_capacity(64 * 1024, file)),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open the access log; lines are dropped until it opens");
            None
        }
    }
}

#[async_trait]
impl BackgroundService for AccessLogService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (Some(config), Some(mut rx)) = (
            self.log.config.clone(),
            self.log.rx.lock().ok().and_then(|mut rx| rx.take()),
        ) else {
            return;
        };
        // Held until the last line is written: the drain must not exit before.
        let _hold = crate::drain::ExitHold::take();
        let mut file = open(&config.path);
        loop {
            tokio::select! {
                line = rx.recv() => {
                    let Some(line) = line else { break };
                    self.write(&mut file, &line);
                    // Everything already queued, then one flush.
                    while let Ok(line) = rx.try_recv() {
                        self.write(&mut file, &line);
                    }
                    flush(&mut file);
                }
                () = self.log.reopen.notified() => {
                    flush(&mut file);
                    file = open(&config.path);
                    tracing::info!(path = %config.path.display(), "access log reopened");
                }
                _ = shutdown.changed() => break,
            }
        }
        // Stopping: requests still in flight log after this point; write their lines
        // until the last has finished (the drain waits for the same count), then close.
        while crate::drain::InFlight::count() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            while let Ok(line) = rx.try_recv() {
                self.write(&mut file, &line);
            }
        }
        rx.close();
        while let Some(line) = rx.recv().await {
            self.write(&mut file, &line);
        }
        flush(&mut file);
    }
}

impl AccessLogService {
    fn write(&self, file: &mut Option<std::io::BufWriter<std::fs::File>>, line: &str) {
        let Some(out) = file.as_mut() else {
            self.log.dropped.inc();
            return;
        };
        if writeln!(out, "{line}").is_ok() {
            self.log.written.inc();
        } else {
            self.log.dropped.inc();
        }
    }
}

fn flush(file: &mut Option<std::io::BufWriter<std::fs::File>>) {
    if let Some(out) = file.as_mut() {
        if let Err(e) = out.flush() {
            tracing::warn!(error = %e, "flushing the access log failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_lines_escape_what_a_client_sent() {
        let line = AccessLine {
            ts: String::new(),
            request_id: Some("r1"),
            client_ip: Some("127.0.0.1"),
            method: "GET",
            path: "/a\"b",
            status: 200,
            bytes_in: 0,
            bytes_out: 5,
            latency_ms: 1.5,
            route: "r",
            key_id: None,
            upstream: None,
            referer: None,
            user_agent: Some("evil\"\n127.0.0.1 - - [forged]"),
        };
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(
            line.render(AccessLogFormat::Combined, at),
            "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /a\\\"b HTTP/1.1\" 200 5 \"-\" \"evil\\\"\\x0A127.0.0.1 - - [forged]\""
        );
        let json = line.render(AccessLogFormat::Json, at);
        assert!(json.starts_with('{') && !json.contains('\n'), "{json}");
    }
}
