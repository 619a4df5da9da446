//! Object keys are relative, `/`-separated, and may not escape their location.

/// Accepts keys like `agg/2021/04/13/19/17/uuid.batch`; refuses empty segments, `.`/`..`,
/// absolute keys, backslashes and control characters, so no key can leave its location.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.starts_with('/') {
        return Err(format!("key {key:?} is absolute"));
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("key {key:?} has an empty, '.' or '..' segment"));
        }
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!(
            "key {key:?} contains a control character or backslash"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(validate_key("a/b/c.batch").is_ok());
        for bad in [
            "", "/a", "a//b", "a/../b", "..", "a/./b", "a/", "a\\b", "a\nb",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
    }
}
