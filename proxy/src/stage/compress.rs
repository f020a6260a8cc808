//! Compress stage: a route's `compress:` — zstd or gzip, chosen from `Accept-Encoding`
//! with its q-values, done by Pingora's response compression module.
//!
//! Not brotli: Pingora 0.9's brotli encoder ends a response with a flush, never the final
//! meta-block, so strict decoders (and browsers) reject what it sends
//! (`brotli::Decompressor`: "Invalid Data"; seen in this stage's test). It comes back
//! when that is fixed upstream.
//!
//! Pingora's module picks the client's *first* listed coding and ignores q-values, so
//! this stage makes the choice (the highest q among the codings we offer; ties go to
//! zstd, then gzip; `*` stands for any not named; `q=0` excludes) and hands
//! the module that one coding only. At the response it is switched off again for what
//! must not be compressed: a range (206, `Content-Range`), `Cache-Control: no-transform`,
//! fewer than `min_bytes`, or a `Content-Type` the route does not list. Responses that
//! are already encoded are left to the module, which never encodes twice, and which adds
//! `Vary: Accept-Encoding` to what it compresses.

use crate::config::CompressConfig;
use crate::ctx::RequestCtx;
use crate::stage::{RequestStage, Step};
use http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use pingora_core::modules::http::compression::ResponseCompression;
use pingora_core::protocols::http::compression::Algorithm;
use pingora_core::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

/// Chooses the coding per request and keeps it off where it does not belong.
#[derive(Debug, Default)]
pub struct CompressStage;

/// The codings offered, in order of preference on equal q.
const OFFERED: [(Algorithm, &str); 2] = [(Algorithm::Zstd, "zstd"), (Algorithm::Gzip, "gzip")];

/// The coding to use for an `Accept-Encoding` value, if any is acceptable.
pub fn choose(accept: &str) -> Option<(Algorithm, &'static str)> {
    let mut q = [None::<f32>; OFFERED.len()];
    let mut any: Option<f32> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
            })
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        if name == "*" {
            any = Some(weight);
        } else if let Some(i) = OFFERED.iter().position(|(_, n)| *n == name) {
            q[i] = Some(weight);
        }
    }
    let mut best: Option<(usize, f32)> = None;
    for (i, named) in q.iter().enumerate() {
        let weight = named.or(any).unwrap_or(0.0);
        if weight > 0.0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((i, weight));
        }
    }
    best.map(|(i, _)| OFFERED[i])
}

fn module(session: &mut Session) -> Option<&mut ResponseCompression> {
    session
        .downstream_modules_ctx
        .get_mut::<ResponseCompression>()
}

impl RequestStage for CompressStage {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Step> {
        let Some(cfg) = ctx.route.as_ref().and_then(|r| r.config.compress.as_ref()) else {
            return Ok(Step::Continue);
        };
        let chosen = session
            .req_header()
            .headers
            .get(ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .and_then(choose);
        let Some((algorithm, name)) = chosen else {
            return Ok(Step::Continue);
        };
        // gzip's 1..=9; zstd takes the same number on its 1..=22 scale.
        let level = cfg.level;
        // The module reads its coding list from a request header: give it just ours.
        let mut only = RequestHeader::build("GET", b"/", Some(1))?;
        only.insert_header(ACCEPT_ENCODING, name)?;
        if let Some(m) = module(session) {
            m.adjust_algorithm_level(algorithm, level);
            m.request_filter(&only);
            ctx.compressing = true;
        }
        Ok(Step::Continue)
    }
}

impl CompressStage {
    /// `response_filter` (and hedged answers), before the module sees the response:
    /// switches compression off for responses that must not be compressed.
    pub fn response(&self, session: &mut Session, response: &ResponseHeader, ctx: &RequestCtx) {
        if !ctx.compressing {
            return;
        }
        let Some(cfg) = ctx.route.as_ref().and_then(|r| r.config.compress.as_ref()) else {
            return;
        };
        if !should_compress(cfg, response) {
            if let Some(m) = module(session) {
                m.adjust_level(0);
            }
        }
    }
}

fn should_compress(cfg: &CompressConfig, response: &ResponseHeader) -> bool {
    let h = &response.headers;
    let text = |name| {
        h.get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if response.status.as_u16() == 206 || h.contains_key(http::header::CONTENT_RANGE) {
        return false;
    }
    if text(CACHE_CONTROL).is_some_and(|c| c.to_ascii_lowercase().contains("no-transform")) {
        return false;
    }
    if text(CONTENT_LENGTH)
        .and_then(|n| n.trim().parse::<u64>().ok())
        .is_some_and(|n| n < cfg.min_bytes)
    {
        return false;
    }
    let Some(kind) = text(CONTENT_TYPE).map(str::to_ascii_lowercase) else {
        return false;
    };
    cfg.types.iter().any(|t| kind.starts_with(t.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(accept: &str) -> Option<&'static str> {
        choose(accept).map(|(_, n)| n)
    }

    #[test]
    fn the_coding_follows_q_values_then_our_preference() {
        assert_eq!(pick("gzip"), Some("gzip"));
        assert_eq!(pick("gzip, deflate, br, zstd"), Some("zstd"));
        assert_eq!(pick("gzip, deflate, br"), Some("gzip"));
        assert_eq!(pick("gzip;q=1.0, zstd;q=0.5"), Some("gzip"));
        assert_eq!(pick("zstd;q=0, gzip;q=0.1"), Some("gzip"));
        assert_eq!(pick("zstd, gzip;q=0.9"), Some("zstd"));
        assert_eq!(pick("*"), Some("zstd"));
        assert_eq!(pick("*;q=0.5, zstd;q=0"), Some("gzip"));
        assert_eq!(pick("br"), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("gzip;q=0"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("GZIP; Q=0.8"), Some("gzip"));
    }

    #[test]
    fn ranges_no_transform_small_and_unlisted_types_are_left_alone() {
        let cfg = CompressConfig {
            level: 5,
            min_bytes: 100,
            types: vec!["text/".into(), "application/json".into()],
        };
        let response = |status: u16, headers: &[(&'static str, &str)]| {
            let mut r = ResponseHeader::build(status, None).expect("response");
            for (k, v) in headers {
                r.insert_header(*k, *v).expect("header");
            }
            r
        };
        let json = ("content-type", "application/json; charset=utf-8");
        assert!(should_compress(
            &cfg,
            &response(200, &[json, ("content-length", "500")])
        ));
        assert!(
            should_compress(&cfg, &response(200, &[json])),
            "no length: streamed"
        );
        assert!(!should_compress(&cfg, &response(206, &[json])));
        assert!(!should_compress(
            &cfg,
            &response(200, &[json, ("content-range", "bytes 0-9/99")])
        ));
        assert!(!should_compress(
            &cfg,
            &response(200, &[json, ("cache-control", "public, no-transform")])
        ));
        assert!(!should_compress(
            &cfg,
            &response(200, &[json, ("content-length", "99")])
        ));
        assert!(!should_compress(
            &cfg,
            &response(200, &[("content-type", "image/png")])
        ));
        assert!(!should_compress(&cfg, &response(200, &[])));
    }
}
