//! TOML errors told without the config's text: a config may hold a key pasted by mistake,
//! and the parser's own message quotes the offending line and value.

use std::path::Path;

/// Runs of this many base64 or hex characters (or more) are taken for key material.
const KEY_LIKE_RUN: usize = 32;

/// The file, line and column, the field and the reason of a TOML error, with every value
/// it quotes left out.
pub fn describe(path: &Path, text: &str, mut error: toml::de::Error) -> String {
    let position = error.span().map(|span| line_and_column(text, span.start));
    // Without its input, the error shows its message and the field, not the source line.
    error.set_input(None);
    let reason = redact(error.to_string().trim()).replace('\n', " ");
    match position {
        Some((line, column)) => format!(
            "config {}, line {line}, column {column}: {reason}",
            path.display()
        ),
        None => format!("config {}: {reason}", path.display()),
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |n| n + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// `text` with each double-quoted value replaced by its length, and each long run of
/// base64 or hex characters (a key, wherever it sits) left out.
fn redact(text: &str) -> String {
    redact_key_like_runs(&redact_quoted(text))
}

fn redact_quoted(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        let mut length = 0;
        let mut escaped = false;
        for inner in chars.by_ref() {
            match (escaped, inner) {
                (false, '"') => break,
                (false, '\\') => escaped = true,
                _ => {
                    escaped = false;
                    length += 1;
                }
            }
        }
        out.push_str(&format!("\"({length} characters, not shown)\""));
    }
    out
}

fn redact_key_like_runs(text: &str) -> String {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || "+/=_-".contains(c);
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if is_key_char(c) {
            run.push(c);
            continue;
        }
        if run.chars().count() >= KEY_LIKE_RUN {
            out.push_str("(not shown)");
        } else {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    out.pop(); // the '\n' that ended the last run
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";

    fn error_of(text: &str) -> String {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct C {
            table: std::collections::BTreeMap<String, u32>,
        }
        let e = toml::from_str::<C>(text).unwrap_err();
        describe(Path::new("/c/x.toml"), text, e)
    }

    #[test]
    fn errors_name_file_line_and_field_but_never_a_value() {
        let e = error_of(&format!("[table]\na = 1\nb = \"{KEY}\"\n"));
        assert!(e.starts_with("config /c/x.toml, line 3, column 5: "), "{e}");
        assert!(
            e.contains("characters, not shown") && !e.contains("MIGH"),
            "{e}"
        );
        let e = error_of(&format!("[table]\n{KEY}\n"));
        assert!(e.contains("line 2") && !e.contains("MIGH"), "{e}");
        let e = error_of(&format!("{KEY} = 1\n[table]\n"));
        assert!(!e.contains("MIGH"), "{e}");
    }

    #[test]
    fn short_words_and_field_names_stay() {
        assert_eq!(
            redact("unknown field `secretz`, expected `file` or `env`"),
            "unknown field `secretz`, expected `file` or `env`"
        );
        assert_eq!(redact(&format!("x {KEY}, y")), "x (not shown), y");
        assert_eq!(
            redact(r#"invalid type: string "a\"b", expected"#),
            "invalid type: string \"(3 characters, not shown)\", expected"
        );
    }
}
