//! Turning file names (arbitrary bytes) into text that is safe to put in an alert
//! line or a JSON string, and shared small formatting helpers.
//!
//! A file name on Linux may hold any byte but `/` and NUL: newlines, ANSI escapes,
//! bidi overrides, invalid UTF-8. [`escape_path`] maps every such byte or character
//! to a visible, reversible escape, so a name can neither add a line to alerts.log
//! nor repaint a terminal that displays it.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The path as one safe line of text: `\\`, `\n`, `\r`, `\t`, `\xNN` for other
/// control bytes and bytes that are not UTF-8, `\u{NNNN}` for Unicode controls,
/// line separators and bidi overrides. Everything else is kept as is.
pub fn escape_path(path: &Path) -> String {
    escape_bytes(path.as_os_str().as_bytes())
}

pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if needs_unicode_escape(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn needs_unicode_escape(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f            // C1 controls (0x9b is a CSI on some terminals)
        | 0x2028 | 0x2029      // line and paragraph separators
        | 0x202a..=0x202e      // bidi embeddings and overrides
        | 0x2066..=0x2069      // bidi isolates
        | 0x200e | 0x200f      // direction marks
        | 0xfeff) // byte-order mark
}

/// The path for a JSON string: exact when it is UTF-8 (JSON escaping then keeps
/// it on one line), otherwise the same escaped form as in alerts.log.
pub fn json_path(path: &Path) -> String {
    match path.to_str() {
        Some(s) => s.to_string(),
        None => escape_path(path),
    }
}

/// Shortens long paths as Wazuh does in full_log: past 756 characters, the first
/// 719, then ` [...] `, then the last 30.
pub fn shorten_for_log(escaped: &str) -> String {
    let n = escaped.chars().count();
    if n <= 756 {
        return escaped.to_string();
    }
    let head: String = escaped.chars().take(719).collect();
    let tail: String = escaped.chars().skip(n - 30).collect();
    format!("{head} [...] {tail}")
}

/// An error with its causes, one after the other: "what failed: why: why that",
/// as anyhow's `{:#}` prints them, for errors logged rather than returned.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn plain_names_are_untouched() {
        assert_eq!(escape_path(Path::new("/media/user/software/a b-é.exe")), "/media/user/software/a b-é.exe");
    }

    #[test]
    fn control_characters_cannot_break_a_line() {
        let p = Path::new("/w/evil\n** Alert 1.1: - ossec,\r\t\x1b[31m\\");
        let e = escape_path(p);
        assert!(!e.contains('\n') && !e.contains('\r') && !e.contains('\x1b'), "{e}");
        assert_eq!(e, "/w/evil\\n** Alert 1.1: - ossec,\\r\\t\\x1b[31m\\\\");
    }

    #[test]
    fn invalid_utf8_and_unicode_controls_are_escaped() {
        let p = Path::new(OsStr::from_bytes(b"/w/\xff\xfename\xe2\x80\xaeexe.txt\xc2\x85"));
        assert_eq!(escape_path(p), "/w/\\xff\\xfename\\u{202e}exe.txt\\u{0085}");
        assert_eq!(json_path(p), escape_path(p));
        assert_eq!(json_path(Path::new("/w/a\nb")), "/w/a\nb");
    }

    #[test]
    fn long_paths_are_shortened_like_wazuh() {
        let long = "x".repeat(800);
        let s = shorten_for_log(&long);
        assert_eq!(s.chars().count(), 719 + 7 + 30);
        assert!(s.contains(" [...] "));
        assert_eq!(shorten_for_log("short"), "short");
    }
}
