//! Text that goes into one-line errors, logs, notices and reports, whatever an operator pasted or
//! an endpoint answered.

/// Control characters (a newline pasted into a field) become `?`: every message stays one line.
pub fn scrub(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// `scrub`, cut to `max` characters with an ellipsis: for quoting input back in an error.
pub fn clip(text: &str, max: usize) -> String {
    let clean = scrub(text);
    if clean.chars().count() > max {
        format!("{}…", clean.chars().take(max).collect::<String>())
    } else {
        clean
    }
}

/// Input quoted in an error: at most 64 characters.
pub fn shorten(text: &str) -> String {
    clip(text, 64)
}

/// Every run of whitespace (line breaks of a multi-line answer included) becomes one space, then
/// `clip` to `max`.
pub fn flatten(text: &str, max: usize) -> String {
    clip(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_whatever_the_input() {
        assert_eq!(scrub("a\nb\u{7}"), "a?b?");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(shorten(&"x".repeat(70)).chars().count(), 65);
        assert_eq!(flatten("a\n  b\tc", 100), "a b c");
    }
}
