//! Request paths as routes see them: one spelling per path, so a rule on a prefix (an
//! IP deny on `/demo/plain/admin`, a keyed `/api/`) cannot be walked around with
//! `//admin`, `/./admin`, `/x/../admin` or `/%61dmin`, which upstreams would read as the
//! same path.
//!
//! Normalizing (RFC 3986 §6.2.2): percent-encoded *unreserved* characters are decoded
//! (`%61` -> `a`, `%2E` -> `.`; others such as `%2F` stay encoded, and a bare `%` becomes
//! `%25`, so decoding again changes nothing), runs of `/` become
//! one, and `.` / `..` segments are resolved (§5.2.4). A `..` that would climb above
//! the root is refused rather than clamped: no client needs it.

use std::borrow::Cow;

/// The normal spelling of `path` (borrowed when it is already normal), or `None` when a
/// `..` climbs above the root or the path does not start with `/`.
pub fn normalize(path: &str) -> Option<Cow<'_, str>> {
    if !path.starts_with('/') {
        return None;
    }
    if is_normal(path) {
        return Some(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = decoded.split('/').skip(1).peekable();
    let mut trailing_slash = false;
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        match segment {
            "" => {
                // `//` collapses; an empty last segment is a trailing slash.
                trailing_slash = last;
            }
            "." => trailing_slash = last,
            ".." => {
                segments.pop()?;
                trailing_slash = last;
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

/// No `%`, no `//`, no `.` or `..` segment: nothing to do (the common case, no copy).
/// One pass over the bytes: it runs on every request.
fn is_normal(path: &str) -> bool {
    // The segment since the last '/': its length and how many of its bytes are dots.
    let (mut len, mut dots) = (0usize, 0usize);
    let dot_segment = |len: usize, dots: usize| (len == 1 || len == 2) && dots == len;
    for (i, &b) in path.as_bytes().iter().enumerate() {
        match b {
            b'%' => return false,
            b'/' => {
                if (i > 0 && len == 0) || dot_segment(len, dots) {
                    return false;
                }
                (len, dots) = (0, 0);
            }
            _ => {
                len += 1;
                dots += usize::from(b == b'.');
            }
        }
    }
    !dot_segment(len, dots)
}

fn decode_unreserved(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escaped = bytes
                .get(i + 1..i + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                    out.push(char::from(b));
                    i += 3;
                    continue;
                }
                Some(_) => {}
                // A bare '%' is written as `%25`: else what follows it, once decoded,
                // could spell a new escape (`%%36%31` -> `%61`) that an upstream decodes
                // a second time, into a path the rules never saw.
                None => {
                    out.push_str("%25");
                    i += 1;
                    continue;
                }
            }
        }
        // Copy up to the next '%' as it is (it may be any UTF-8).
        let next = bytes[i + 1..]
            .iter()
            .position(|b| *b == b'%')
            .map_or(bytes.len(), |p| i + 1 + p);
        out.push_str(&path[i..next]);
        i = next;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str) -> Option<String> {
        normalize(path).map(Cow::into_owned)
    }

    #[test]
    fn one_spelling_per_path() {
        for (raw, want) in [
            ("/demo/plain/admin", "/demo/plain/admin"),
            ("/demo/plain//admin/config", "/demo/plain/admin/config"),
            ("/demo/plain/./admin", "/demo/plain/admin"),
            ("/demo/plain/x/../admin", "/demo/plain/admin"),
            ("/demo/plain/%61dmin", "/demo/plain/admin"),
            ("/demo/plain/%2e%2E/plain/admin", "/demo/plain/admin"),
            ("/a/b/", "/a/b/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/", "/"),
            ("//", "/"),
            ("/a%2Fb", "/a%2Fb"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/%zz", "/%25zz"),
            ("/%", "/%25"),
            ("/%%36%31dmin", "/%2561dmin"),
            ("/é/%41", "/é/A"),
        ] {
            assert_eq!(norm(raw).as_deref(), Some(want), "{raw}");
        }
        assert!(matches!(normalize("/a/b"), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn the_one_pass_check_agrees_with_its_definition() {
        // Every '/'-led path of up to 7 bytes over the bytes that matter.
        let definition = |p: &str| {
            !p.contains('%') && !p.contains("//") && !p.split('/').any(|s| s == "." || s == "..")
        };
        let alphabet = [b'/', b'.', b'a', b'%'];
        let mut paths = vec![String::from("/")];
        for _ in 0..6 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| {
                    alphabet
                        .iter()
                        .map(move |&b| format!("{p}{}", char::from(b)))
                })
                .collect();
            for p in &paths {
                assert_eq!(is_normal(p), definition(p), "{p:?}");
            }
            paths = longer;
        }
        for p in &paths {
            assert_eq!(is_normal(p), definition(p), "{p:?}");
        }
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for raw in ["/..", "/a/../..", "/%2e%2e/etc/passwd", "x", ""] {
            assert_eq!(norm(raw), None, "{raw}");
        }
    }
}
