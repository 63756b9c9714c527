//! The one place text from other processes is made safe to print.
//!
//! comm, cmdline, user and group names, unix socket paths, netns and
//! container names are chosen by whoever runs the process: any of them may
//! hold an escape sequence that retitles or clears the admin's terminal, a
//! newline that splits a `--plain` row, or bytes that are not UTF-8. Every
//! text renderer passes them through here; JSON carries the exact value
//! (serde escapes it for JSON).
//!
//! Hand-written: `str::escape_debug` also escapes quotes and leaves C1
//! controls and bidi overrides alone, and the crates that quote shell
//! words (`shell-escape`) add quoting we do not want in a table.

use std::borrow::Cow;
use std::fmt::Write;

/// Escape `s` for a terminal: control characters (C0, DEL, C1), Unicode
/// bidi and line/paragraph separators become visible (`\n`, `\t`, `\r`,
/// `\x1b`, `\u{202e}`), and a backslash doubles so the result is
/// unambiguous. Printable text, spaces included, is kept.
pub fn terminal(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Escape `s` for one `--plain` field: as `terminal`, and whitespace
/// (space, and any Unicode space) too, so a field is always one awk word.
/// An empty value becomes `-`.
pub fn field(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        return Cow::Borrowed("-");
    }
    escape(s, true)
}

/// Escape raw bytes (a name that is not UTF-8): each invalid byte is shown
/// as `\xNN`, the valid parts as `terminal` does.
pub fn bytes(b: &[u8]) -> String {
    bytes_as(b, false)
}

/// `field` for raw bytes: one awk word, invalid bytes as `\xNN`.
pub fn field_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    bytes_as(b, true)
}

fn bytes_as(b: &[u8], whitespace: bool) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(&escape(chunk.valid(), whitespace));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

fn needs_escape(c: char, whitespace: bool) -> bool {
    c == '\\'
        || c.is_control()
        || (whitespace && c.is_whitespace())
        || matches!(c,
            // bidi embeddings, overrides and isolates; LRM/RLM/ALM
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
            // line and paragraph separators end a line on some terminals
            | '\u{2028}' | '\u{2029}')
}

fn escape(s: &str, whitespace: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, whitespace)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c, whitespace) {
            out.push(c);
            continue;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(terminal("nginx: worker"), Cow::Borrowed(_)));
        assert!(matches!(field("nginx"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_escapes_controls() {
        assert_eq!(terminal("\x1b]0;PWNED\x07"), "\\x1b]0;PWNED\\x07");
        assert_eq!(terminal("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(terminal("del\x7f"), "del\\x7f");
        assert_eq!(terminal("c1\u{9b}31m"), "c1\\x9b31m");
        assert_eq!(terminal("back\\slash"), "back\\\\slash");
        assert_eq!(terminal("rtl\u{202e}gpj.exe"), "rtl\\u{202e}gpj.exe");
        assert_eq!(terminal("with space"), "with space");
        assert_eq!(terminal("ünïcode ok"), "ünïcode ok");
    }

    #[test]
    fn field_is_one_word() {
        assert_eq!(field("php-fpm: pool www"), "php-fpm:\\x20pool\\x20www");
        assert_eq!(field("a\u{a0}b"), "a\\xa0b");
        assert_eq!(field(""), "-");
        for s in ["a b", "x\ny", "t\tab", "\u{2028}", "\u{3000}ideo"] {
            let f = field(s);
            assert!(!f.chars().any(char::is_whitespace), "{f:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_visible() {
        assert_eq!(bytes(b"bad\xff\xfe"), "bad\\xff\\xfe");
        assert_eq!(bytes(b"ok\x1b"), "ok\\x1b");
        assert_eq!(bytes("é".as_bytes()), "é");
        assert_eq!(field_bytes(b"bad \xff"), "bad\\x20\\xff");
        assert_eq!(field_bytes(b""), "-");
    }
}
