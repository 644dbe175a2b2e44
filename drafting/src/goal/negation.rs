//! Verbs a goal negates ("don't delete anything") are not asked for: the
//! offline drafter and the grounding checks read the goal the same way.

use super::Action;

/// Words that negate the verbs after them, up to the end of the clause
/// (apostrophes normalised to `'`).
const NEGATIONS: &[&str] = &[
    "not",
    "never",
    "no",
    "nor",
    "neither",
    "without",
    "avoid",
    "avoiding",
    "refrain",
    "cannot",
    "dont",
    "doesnt",
    "didnt",
    "wont",
    "shouldnt",
    "mustnt",
    "cant",
    "isnt",
    "arent",
    "forbidden",
    "prohibited",
    "nothing",
];
/// Words after which a negation no longer applies.
const NEGATION_ENDS: &[&str] = &["but", "then", "instead", "however", "rather", "except"];

/// `text` with every write verb (create, update, delete, …) that a negation
/// governs blanked out ("don't delete anything", "never create or close
/// issues"), and the blanked verbs. A negation reaches to the end of its
/// clause (`,` `;` `.` `:` `!` `?`, a new line, or "but", "then", …), so
/// "don't delete X and create Y" does not ask to create either: a goal read
/// too narrowly refuses a write, one read too widely would allow it.
pub(crate) fn without_negated_actions(text: &str) -> (String, Vec<String>) {
    let mut out = text.to_owned();
    let mut negated = Vec::new();
    for (start, end, in_scope) in scoped_words(text) {
        let word = plain(&text[start..end]);
        if in_scope && Action::of_verb(&word).is_some_and(|a| a != Action::Read) {
            out.replace_range(start..end, &" ".repeat(end - start));
            negated.push(word);
        }
    }
    (out, negated)
}

/// The words of `text` as written, in order, each with whether a negation
/// governs it (or is it): "reboot it, don't *rebuild* it".
pub(crate) fn words_read(text: &str) -> Vec<(String, bool)> {
    scoped_words(text)
        .into_iter()
        .map(|(start, end, in_scope)| (text[start..end].to_owned(), in_scope || is_negation(&text[start..end])))
        .collect()
}

/// Each word's span, and whether a negation before it in its clause
/// governs it.
fn scoped_words(text: &str) -> Vec<(usize, usize, bool)> {
    let mut word_start: Option<usize> = None;
    let is_word_char = |c: char| c.is_alphanumeric() || c == '\'' || c == '\u{2019}' || c == '_' || c == '-';
    let ends_scope = |c: char| matches!(c, ',' | ';' | '.' | ':' | '!' | '?' | '\n' | '\r');
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut breaks: Vec<usize> = Vec::new();
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        if is_word_char(c) && i < text.len() {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(start) = word_start.take() {
            words.push((start, i));
        }
        if ends_scope(c) && i < text.len() {
            breaks.push(words.len());
        }
    }
    let mut out = Vec::with_capacity(words.len());
    let mut in_scope = false;
    let mut next_break = breaks.iter().peekable();
    for (n, &(start, end)) in words.iter().enumerate() {
        while next_break.peek().is_some_and(|b| **b <= n) {
            next_break.next();
            in_scope = false;
        }
        let word = plain(&text[start..end]);
        if NEGATION_ENDS.contains(&word.as_str()) {
            in_scope = false;
        } else if is_negation(&text[start..end]) {
            in_scope = true;
        }
        out.push((start, end, in_scope));
    }
    out
}

/// The word in lower case without apostrophes (`Don't` is `dont`).
fn plain(word: &str) -> String {
    word.chars().filter(|c| *c != '\'' && *c != '\u{2019}').collect::<String>().to_lowercase()
}

fn is_negation(word: &str) -> bool {
    let lower = plain(word);
    NEGATIONS.contains(&lower.as_str()) || (lower.ends_with("nt") && word.contains(['\'', '\u{2019}']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negated_write_verbs_are_blanked_to_the_end_of_their_clause() {
        let (text, negated) = without_negated_actions("Don't create or delete issues, then close issue 4");
        assert_eq!(negated, vec!["create", "delete"]);
        assert_eq!(text, "Don't        or        issues, then close issue 4");
        let (_, negated) = without_negated_actions("list issues but never delete; delete label 3");
        assert_eq!(negated, vec!["delete"]);
        let (text, negated) = without_negated_actions("list issues and read the docs on creating them");
        assert!(negated.is_empty());
        assert_eq!(text, "list issues and read the docs on creating them");
        // Reading verbs are left alone: a negated read asks for nothing anyway.
        assert!(without_negated_actions("don't list drafts").1.is_empty());
    }

    #[test]
    fn words_read_mark_what_a_negation_governs() {
        let affirmed = |text: &str| -> Vec<String> {
            words_read(text).into_iter().filter(|(_, negated)| !negated).map(|(w, _)| w).collect()
        };
        assert_eq!(affirmed("Reboot droplet 7, don't rebuild it"), vec!["Reboot", "droplet", "7"]);
        assert_eq!(affirmed("never power_off but snapshot"), vec!["but", "snapshot"]);
        assert_eq!(affirmed("Add an A record"), vec!["Add", "an", "A", "record"]);
    }
}
