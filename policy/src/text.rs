//! Characters a human reviewer cannot see. One definition, used for paths
//! (refused), agent and drafter text shown to owners (removed before it is
//! read), and prompt-injection checks.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// True for characters that change how text reads, not what it visibly says:
/// every Unicode format character (zero-width space and joiners, soft
/// hyphen, bidirectional controls, word joiner, BOM, the tag block
/// U+E0000–E007F, …), plus the invisible characters of other categories:
/// the combining grapheme joiner, variation selectors, Mongolian free
/// variation selectors, Khmer inherent vowels and the Hangul fillers.
pub fn is_invisible(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
        || matches!(
            c,
            '\u{34f}'                        // combining grapheme joiner
            | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' // Hangul fillers
            | '\u{17b4}' | '\u{17b5}'        // Khmer inherent vowels
            | '\u{180b}'..='\u{180f}'        // Mongolian free variation selectors
            | '\u{fe00}'..='\u{fe0f}'        // variation selectors
            | '\u{e0100}'..='\u{e01ef}' // variation selectors supplement
        )
}
