//! Text that agents (or a gateway) wrote, as people should see it, on the
//! owner's pages and on a terminal alike: characters that hide text, move it
//! or act (invisible and format characters, bidi overrides, controls, escape
//! sequences) are shown as `⟨U+202E⟩` instead, so nothing can redraw or
//! disguise what an owner reads before deciding.

/// Characters that hide text, move it, or draw nothing: invisible and format
/// characters, controls (but newline and tab), line and paragraph
/// separators, private-use characters and the blank Braille cell.
pub fn hides(c: char) -> bool {
    oauth3_policy::is_invisible(c)
        || (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{2800}' | '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..)
}

/// `text` with every character that [`hides`] shown as its code point.
pub fn shown(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if hides(c) {
            shown.push_str(&format!("⟨U+{:04X}⟩", c as u32));
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(super::shown("ok\u{1b}[2Jx\u{202e}y\rz\n"), "ok⟨U+001B⟩[2Jx⟨U+202E⟩y⟨U+000D⟩z\n");
    }
}
