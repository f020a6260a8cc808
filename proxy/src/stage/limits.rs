//! Limits stage, first in the pipeline: requests whose framing is ambiguous, or whose
//! headers are larger than a gateway should hold, are refused before any other stage
//! (or the upstream) reads them.
//!
//! - `Content-Length` together with `Transfer-Encoding`, or several `Content-Length`s:
//!   400. Two parsers reading such a request differently is how requests are smuggled
//!   past a proxy; refusing it is the only reading that cannot disagree.
//! - More than [`MAX_HEADERS`] headers, or more than [`MAX_HEADER_BYTES`] of them: 431.
//!
//! A refused request's connection is closed after the answer: its body was not read, so
//! the next bytes on it cannot be trusted to start a request.

use crate::ctx::RequestCtx;
use crate::respond::Refusal;
use crate::stage::{RequestStage, Step};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::HeaderMap;
use pingora_core::Result;
use pingora_proxy::Session;

/// Most headers a request may carry.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of header names and values a request may carry (nginx's default buffers
/// hold 4 × 8 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses ambiguous and oversized requests.
#[derive(Debug, Default)]
pub struct LimitsStage;

/// The refusal for `headers`, if they break a limit.
fn check(headers: &HeaderMap) -> Option<Refusal> {
    let lengths = headers.get_all(CONTENT_LENGTH).iter().count();
    if lengths > 0 && headers.contains_key(TRANSFER_ENCODING) {
        return Some(Refusal::new(
            400,
            "ambiguous_length",
            "a request may not carry both Content-Length and Transfer-Encoding",
        ));
    }
    if lengths > 1 {
        return Some(Refusal::new(
            400,
            "ambiguous_length",
            "a request may carry one Content-Length",
        ));
    }
    if headers.len() > MAX_HEADERS {
        return Some(Refusal::new(
            431,
            "too_many_headers",
            format!("a request may carry at most {MAX_HEADERS} headers"),
        ));
    }
    let bytes = headers.iter().fold(0usize, |n, (k, v)| {
        n.saturating_add(k.as_str().len() + v.len())
    });
    if bytes > MAX_HEADER_BYTES {
        return Some(Refusal::new(
            431,
            "headers_too_large",
            format!("request headers may hold at most {MAX_HEADER_BYTES} bytes"),
        ));
    }
    None
}

impl RequestStage for LimitsStage {
    async fn run(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Result<Step> {
        Ok(match check(&session.req_header().headers) {
            None => Step::Continue,
            Some(refusal) => {
                crate::metrics::metrics()
                    .refusals
                    .with_label_values(&[refusal.code])
                    .inc();
                session.set_keepalive(None);
                Step::Respond(refusal)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn ambiguous_framing_is_400_and_big_headers_431() {
        let status = |h: &HeaderMap| check(h).map(|r| r.status);
        assert_eq!(status(&headers(&[("content-length", "3")])), None);
        assert_eq!(
            status(&headers(&[
                ("content-length", "3"),
                ("transfer-encoding", "chunked")
            ])),
            Some(400)
        );
        assert_eq!(
            status(&headers(&[
                ("content-length", "3"),
                ("content-length", "3")
            ])),
            Some(400)
        );
        let big = "a".repeat(MAX_HEADER_BYTES);
        assert_eq!(status(&headers(&[("x-big", &big)])), Some(431));
        let mut many = HeaderMap::new();
        for i in 0..=MAX_HEADERS {
            let name = http::HeaderName::try_from(format!("x-h{i}")).expect("name");
            many.append(name, "v".parse().expect("value"));
        }
        assert_eq!(status(&many), Some(431));
    }
}
