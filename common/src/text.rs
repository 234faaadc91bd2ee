//! Text that reaches logs and files: one event must stay one log line, so names, targets and
//! comments may not carry control characters.

/// The first character of `s` that would break a log line or a terminal: C0 and C1 controls
/// (newline, carriage return, NUL, escape, ...), DEL, and Unicode's line and paragraph
/// separators.
pub fn first_control(s: &str) -> Option<char> {
    s.chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

#[cfg(test)]
mod tests {
    use super::first_control;

    #[test]
    fn controls_and_separators_are_found_printable_text_is_not() {
        for bad in [
            "a\nb",
            "a\r\nb",
            "nul\0",
            "esc\x1b[31m",
            "del\x7f",
            "c1\u{85}",
            "ls\u{2028}",
            "ps\u{2029}",
        ] {
            assert!(first_control(bad).is_some(), "{bad:?}");
        }
        for good in [
            "web@demo",
            "dns.resolver@au-syd",
            "ünïcødé name",
            "tab-free",
        ] {
            assert_eq!(first_control(good), None, "{good:?}");
        }
    }
}
