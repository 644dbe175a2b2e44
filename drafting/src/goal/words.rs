//! Words: splitting goal text into tokens, identifiers into words, and a
//! simple English singular.

/// One token of a goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A word or identifier, lower case (`issues`, `thread_ts`, `delete`).
    Word(String),
    /// `owner/repo`.
    Pair(String, String),
    /// A value: quoted, `#`-prefixed, or containing a digit (`42`, `cus_123`).
    Value(String),
    /// `,` `;` or sentence punctuation.
    Break,
    /// Anything else (URLs, lone symbols).
    Other,
}

/// Splits `text` into tokens. `"…"` and `` `…` `` quote one value.
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == ',' || c == ';' {
            chars.next();
            tokens.push(Token::Break);
        } else if c == '"' || c == '`' {
            chars.next();
            let mut value = String::new();
            for (_, d) in chars.by_ref() {
                if d == c {
                    break;
                }
                value.push(d);
            }
            let value = value.trim();
            tokens.push(if value.is_empty() { Token::Other } else { Token::Value(value.to_owned()) });
        } else {
            let mut end = text.len();
            while let Some(&(i, d)) = chars.peek() {
                if d.is_whitespace() || d == ',' || d == ';' {
                    end = i;
                    break;
                }
                chars.next();
            }
            chunk(&text[start..end], &mut tokens);
        }
    }
    tokens
}

/// Reads one whitespace-delimited chunk.
fn chunk(raw: &str, tokens: &mut Vec<Token>) {
    let trimmed = raw.trim_end_matches(|c: char| ")]}>'\".:!?".contains(c));
    let ends_sentence = raw[trimmed.len()..].contains(['.', ':', '!', '?']);
    let quoted = trimmed.starts_with('\'') && raw.len() > trimmed.len() && raw[trimmed.len()..].starts_with('\'');
    let text = trimmed.trim_start_matches(|c: char| "([{<'\"".contains(c));
    tokens.push(classify(text, quoted));
    if ends_sentence {
        tokens.push(Token::Break);
    }
}

fn classify(text: &str, quoted: bool) -> Token {
    if text.is_empty() || text.contains("://") {
        return Token::Other;
    }
    if quoted {
        return Token::Value(text.to_owned());
    }
    if let Some(rest) = text.strip_prefix('#') {
        return if rest.is_empty() { Token::Other } else { Token::Value(rest.to_owned()) };
    }
    if let Some((a, b)) = text.split_once('/') {
        let part = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                && super::Action::of_verb(&s.to_ascii_lowercase()).is_none()
                && !super::STOPWORDS.contains(&s.to_ascii_lowercase().as_str())
        };
        return if part(a) && part(b) { Token::Pair(a.to_owned(), b.to_owned()) } else { Token::Other };
    }
    if text.bytes().any(|b| b.is_ascii_digit()) {
        // A date or a time is when, not which: it names no resource.
        if super::stated::is_date_or_time(text) {
            return Token::Other;
        }
        return Token::Value(text.to_owned());
    }
    // "repo's" → "repo".
    let word = text.split('\'').next().unwrap_or_default();
    if word == "&"
        || (word.bytes().any(|b| b.is_ascii_alphabetic())
            && word.bytes().all(|b| b.is_ascii_alphabetic() || b"_-".contains(&b)))
    {
        return Token::Word(word.to_ascii_lowercase());
    }
    Token::Other
}

/// Splits an identifier or path segment into singular lower-case words, on
/// non-alphanumerics and camelCase: `chat.postMessage` → chat, post,
/// message; `list-for-repo` → list, for, repo; `HTMLPage` → html, page.
pub(crate) fn split_words(identifier: &str) -> Vec<String> {
    let mut words = Vec::new();
    for part in identifier.split(|c: char| !c.is_ascii_alphanumeric()) {
        let chars: Vec<char> = part.chars().collect();
        let mut word = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let boundary = i > 0
                && c.is_ascii_uppercase()
                && (chars[i - 1].is_ascii_lowercase()
                    || chars[i - 1].is_ascii_digit()
                    || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()) && chars[i - 1].is_ascii_uppercase());
            if boundary && !word.is_empty() {
                words.push(singular(&word));
                word.clear();
            }
            word.push(c.to_ascii_lowercase());
        }
        if !word.is_empty() {
            words.push(singular(&word));
        }
    }
    words
}

/// A simple English singular of a lower-case word: issues → issue,
/// replies → reply, addresses → address, branches → branch; words ending
/// in `ss`, `us`, `is` and short words are left alone.
pub(crate) fn singular(word: &str) -> String {
    if word.len() <= 3 || !word.ends_with('s') || ["ss", "us", "is"].iter().any(|end| word.ends_with(end)) {
        return word.to_owned();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for end in ["sses", "xes", "ches", "shes"] {
        if word.ends_with(end) {
            return word[..word.len() - 2].to_owned();
        }
    }
    word[..word.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singulars() {
        for (plural, one) in [
            ("issues", "issue"),
            ("replies", "reply"),
            ("addresses", "address"),
            ("messages", "message"),
            ("repos", "repo"),
            ("branches", "branch"),
            ("status", "status"),
            ("address", "address"),
            ("ids", "ids"),
        ] {
            assert_eq!(singular(plural), one, "{plural}");
        }
    }

    #[test]
    fn identifiers_split_into_words() {
        assert_eq!(split_words("chat.postMessage"), ["chat", "post", "message"]);
        assert_eq!(split_words("issues/list-for-repo"), ["issue", "list", "for", "repo"]);
        assert_eq!(split_words("HTMLPage"), ["html", "page"]);
        assert_eq!(split_words("thread_ts"), ["thread", "ts"]);
        assert_eq!(split_words("{issue_number}"), ["issue", "number"]);
    }

    #[test]
    fn tokens() {
        use Token::*;
        assert_eq!(
            tokenize("List issues in acme/widgets, comment on #42 (see https://x.example/a) and 'bug'."),
            vec![
                Word("list".into()),
                Word("issues".into()),
                Word("in".into()),
                Pair("acme".into(), "widgets".into()),
                Break,
                Word("comment".into()),
                Word("on".into()),
                Value("42".into()),
                Word("see".into()),
                Other,
                Word("and".into()),
                Value("bug".into()),
                Break,
            ]
        );
        assert_eq!(tokenize("read/write DELETE /"), vec![Other, Word("delete".into()), Other]);
    }
}
