//! `${NAME}` and `${NAME:-default}` in the config text, replaced from the environment
//! before parsing, so secrets (the admin token's hash) and addresses (`REDIS_URL`) can
//! come from the environment without a generated file. Line numbers are unchanged.

/// The text with every reference replaced, or `(line, message)` for each unset variable
/// without a default.
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<(usize, String)>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            // `${VAR:-d}` treats an empty VAR as unset, as the shell does.
            let value = lookup(name).filter(|v| !v.is_empty() || default.is_none());
            match (value, default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    errors.push((n + 1, format!("environment variable {name} is not set")))
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_with_values_or_defaults() {
        let text = "a: ${SET}\nb: \"${UNSET:-x}\"\nc: ${EMPTY:-d}\nd: ${EMPTY}\n";
        assert_eq!(
            expand(text, env).expect("ok"),
            "a: value\nb: \"x\"\nc: d\nd: \n"
        );
    }

    #[test]
    fn unset_variables_without_default_are_errors_with_lines() {
        let errs = expand("a: 1\nb: ${NOPE}\n", env).expect_err("unset");
        assert_eq!(
            errs,
            vec![(2, "environment variable NOPE is not set".to_string())]
        );
    }
}
