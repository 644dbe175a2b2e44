//! Text a gateway (or an agent, through it) wrote, made safe to print on a
//! terminal: control characters, bidi overrides and invisible characters are
//! shown as `⟨U+202E⟩` instead of acting, so no escape sequence can redraw
//! what an owner reads before deciding.

/// `text` with every hidden or controlling character (but newline and tab)
/// shown as its code point.
pub fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if crate::web::pages::hides(c) {
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
        assert_eq!(super::printable("ok\u{1b}[2Jx\u{202e}y\rz\n"), "ok⟨U+001B⟩[2Jx⟨U+202E⟩y⟨U+000D⟩z\n");
    }
}
