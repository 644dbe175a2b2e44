//! Values a goal states outright, typed: an email, a URL or domain, an
//! IBAN (checksum verified), a channel (`#general`) or user (`@bob`), a
//! phone number, an amount with its currency, a quoted string, an id. The
//! offline drafter pins a parameter to such a value when the parameter is
//! documented for that kind of value (see `offline/pin.rs`).

use super::words::singular;

/// What kind of value a goal states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `alice@example.com`.
    Email,
    /// `https://example.org/a` or `example.org/news`.
    Url,
    /// `DE89370400440532013000` (spaces removed, checksum valid).
    Iban,
    /// `#general`: the value is written without the `#`.
    Channel,
    /// `@bob`: the value is written without the `@`.
    User,
    /// `+14155550123`.
    Phone,
    /// `84.20 EUR`, `$12`: the value is the number as written.
    Amount {
        /// ISO 4217 code, when stated.
        currency: Option<String>,
    },
    /// Text in quotes.
    Quoted,
    /// Anything else with a digit in it (`42`, `cus_123`, `INV-2291`).
    Id,
}

/// One value the goal states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stated {
    /// What it is.
    pub kind: Kind,
    /// The value (IBANs without spaces, channels without `#`).
    pub value: String,
    /// The noun just before it (`subject 'Hi'`, `issue 42`), singular and
    /// lower case, when there is one. Values listed with `and`/`or`/`,`
    /// share it (`options 'a' and 'b'`).
    pub noun: Option<String>,
    /// The word before the noun when the two make one noun (`public` of
    /// `SSH public key 'ssh-ed25519 …'`), singular and lower case: a field
    /// may be named by both (`public_key`).
    pub qualifier: Option<String>,
    /// The preposition it follows, of those that say whose an address is:
    /// `from`, `to`, `cc`, `bcc` (`from support@…`, `cc carol@…`), or
    /// `reply` after `reply-to`.
    pub role: Option<String>,
}

/// Currency symbols and the codes they stand for.
const SYMBOLS: &[(char, &str)] = &[('$', "USD"), ('€', "EUR"), ('£', "GBP"), ('¥', "JPY")];
/// Currency words and their codes.
const CURRENCY_WORDS: &[(&str, &str)] = &[
    ("euro", "EUR"),
    ("euros", "EUR"),
    ("dollar", "USD"),
    ("dollars", "USD"),
    ("pound", "GBP"),
    ("pounds", "GBP"),
    ("cent", "cents"),
    ("cents", "cents"),
];

/// Words that say whose an address is.
const ROLES: &[&str] = &["from", "to", "cc", "bcc"];
/// Words that say an address is where replies go.
const REPLY: &[&str] = &["reply-to", "replyto", "reply_to"];

/// Words after which, up to the next `,` `;` or `.`, values are what the
/// goal rules out ("not old@…", "don't cc boss@…"), not what it states.
const NEGATIONS: &[&str] = &["not", "don't", "dont", "never", "no", "without", "except", "nor", "isn't", "doesn't"];

/// Most values read from one goal: more are not read (a goal is a task, not
/// a list; the cap bounds the work of pinning).
pub const MAX_STATED: usize = 32;

/// Words that join values of one list.
const JOINERS: &[&str] = &["and", "or", "&"];

/// Words that lead into a value without naming what it is for.
const LEADS: &[&str] = &["a", "an", "the", "to", "of", "named", "called", "titled", "with", "number", "id", "no"];

/// A noun and the word qualifying it, if any (`public` of `public key`).
type Noun = Option<(String, Option<String>)>;

/// Reads every value `text` states, in order.
pub fn stated(text: &str) -> Vec<Stated> {
    let chunks = chunks(text);
    let mut out: Vec<Stated> = Vec::new();
    // The noun (with its qualifier) and the role for the next value.
    let mut noun: Noun = None;
    let mut role: Option<String> = None;
    // Where the last noun was read, so a noun right after it is compound.
    let mut noun_read_at: Option<usize> = None;
    // The noun and role of the value just read, for the next one in a list.
    let mut carried: Option<(Noun, Option<String>)> = None;
    let mut i = 0;
    let push = |kind: Kind, value: String, noun: &mut Noun, role: &mut Option<String>, out: &mut Vec<Stated>| {
        let ((n, qualifier), r) = (noun.take().unzip(), role.take());
        out.push(Stated { kind, value, noun: n, qualifier: qualifier.flatten(), role: r });
    };
    let carry = |s: &Stated| (s.noun.clone().map(|n| (n, s.qualifier.clone())), s.role.clone());
    // Inside a negated stretch, up to the next `,` `;` `.`.
    let mut negated = false;
    while i < chunks.len() && out.len() < MAX_STATED {
        let (raw, quoted) = &chunks[i];
        let listed = raw.ends_with(',');
        let lower_raw = raw.to_ascii_lowercase().replace('’', "'");
        if !quoted && NEGATIONS.contains(&trim(&lower_raw)) {
            negated = true;
            i += 1;
            continue;
        }
        if negated {
            negated = !(raw.ends_with([',', ';', '.']) || (!quoted && raw.trim().is_empty()));
            i += 1;
            continue;
        }
        if *quoted {
            // Quoted text is text, unless it is an address (`'a@b.example'`,
            // `'https://…'`): `'Contract-final.pdf'` is a name.
            let kind = classify(raw)
                .filter(|k| matches!(k, Kind::Email | Kind::Channel | Kind::User | Kind::Phone) || raw.contains("://"))
                .unwrap_or(Kind::Quoted);
            let value = normalise(raw, &kind);
            push(kind, value, &mut noun, &mut role, &mut out);
            // "card 'X'": the noun just before names it. Else "my 'Quarterly
            // planning' event": the noun just after does.
            let noun_at = |j: usize| -> Option<String> {
                let (chunk, false) = chunks.get(j)? else { return None };
                let word = trim(chunk).to_ascii_lowercase();
                let plain = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
                let filler = LEADS.contains(&word.as_str())
                    || super::STOPWORDS.contains(&word.as_str())
                    || ROLES.contains(&word.as_str())
                    || JOINERS.contains(&word.as_str())
                    || super::Action::of_verb(&word).is_some();
                (plain && !filler).then(|| singular(&word))
            };
            let adjacent = i.checked_sub(1).and_then(noun_at);
            if adjacent.is_none()
                && let Some(after) = noun_at(i + 1)
                && let Some(last) = out.last_mut()
            {
                last.noun = Some(after);
                last.qualifier = None;
            }
            i += 1;
            carried = out.last().map(carry);
            continue;
        }
        let word = trim(raw);
        let before = out.len();
        if let Some((iban, used)) = iban_at(&chunks[i..]) {
            push(Kind::Iban, iban, &mut noun, &mut role, &mut out);
            i += used;
        } else if let Some((amount, used)) = amount_at(&chunks[i..]) {
            push(amount.kind, amount.value, &mut noun, &mut role, &mut out);
            i += used;
        } else if let Some(kind) = classify(word) {
            let value = normalise(word, &kind);
            push(kind, value, &mut noun, &mut role, &mut out);
            i += 1;
        } else {
            let lower = word.to_ascii_lowercase();
            let plain = !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
            if JOINERS.contains(&lower.as_str()) || (lower.is_empty() && raw.contains(',')) {
                if let Some((n, r)) = carried.clone() {
                    noun = n;
                    role = r;
                }
            } else if REPLY.contains(&lower.as_str()) {
                // "reply-to hello@…": where answers go, never a recipient
                // ("reply to bob@…" is the verb: bob is the recipient).
                role = Some("reply".to_owned());
                carried = None;
            } else if ROLES.contains(&lower.as_str()) {
                role = Some(lower.clone());
                if lower == "cc" || lower == "bcc" {
                    noun = Some((lower, None));
                }
                carried = None;
            } else if LEADS.contains(&lower.as_str()) || super::STOPWORDS.contains(&lower.as_str()) {
                // "issue number 42", "to the channel": the noun stands.
                carried = None;
            } else if plain {
                let compound = noun_read_at.is_some_and(|at| at + 1 == i);
                let qualifier = noun.take().filter(|_| compound).map(|(n, _)| n);
                noun = Some((singular(&lower), qualifier));
                noun_read_at = Some(i);
                role = None;
                carried = None;
            } else {
                noun = None;
                carried = None;
            }
            i += 1;
            continue;
        }
        if out.len() > before {
            carried = out.last().map(carry);
            if listed && let Some((n, r)) = carried.clone() {
                noun = n;
                role = r;
            }
        }
    }
    out
}

/// `text` without its quoted stretches: what the goal says in its own
/// words, not the text it quotes (a subject line, a message).
pub(super) fn unquoted(text: &str) -> String {
    let kept: Vec<String> = chunks(text).into_iter().filter(|(_, quoted)| !quoted).map(|(raw, _)| raw).collect();
    kept.join(" ")
}

/// Whitespace-separated chunks, quoted text kept whole (`true`).
fn chunks(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let mut previous: Option<char> = None;
    while let Some(c) = chars.next() {
        let close = match c {
            '"' | '`' => Some(c),
            '“' => Some('”'),
            '‘' => Some('’'),
            '\'' if previous.is_none_or(char::is_whitespace) => Some('\''),
            _ => None,
        };
        if let (Some(close), true) = (close, word.is_empty()) {
            let mut quoted = String::new();
            let mut closed = false;
            while let Some(d) = chars.next() {
                // An apostrophe inside a word (`I'll`) does not close.
                if d == close && (close != '\'' || chars.peek().is_none_or(|n| !n.is_alphanumeric())) {
                    closed = true;
                    break;
                }
                quoted.push(d);
            }
            let quoted = quoted.trim().to_owned();
            if closed && !quoted.is_empty() {
                out.push((quoted, true));
            } else if !closed {
                // A stray mark (`27"`, an apostrophe) quotes nothing: the
                // rest is read as it is written.
                out.extend(quoted.split_whitespace().map(|w| (w.to_owned(), false)));
            }
            previous = Some(close);
            continue;
        }
        if c.is_whitespace() {
            if !word.is_empty() {
                out.push((std::mem::take(&mut word), false));
            }
        } else {
            word.push(c);
        }
        previous = Some(c);
    }
    if !word.is_empty() {
        out.push((word, false));
    }
    out
}

/// A chunk without the punctuation around it.
fn trim(raw: &str) -> &str {
    raw.trim_start_matches(['(', '[', '<', '{']).trim_end_matches([',', ';', '.', ':', '!', '?', ')', ']', '>', '}'])
}

fn classify(word: &str) -> Option<Kind> {
    if word.is_empty() {
        return None;
    }
    if let Some(at) = word.find('@')
        && at > 0
        && is_domain(&word[at + 1..])
        && word[..at].bytes().all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
    {
        return Some(Kind::Email);
    }
    if word.starts_with("https://") || word.starts_with("http://") {
        return Some(Kind::Url);
    }
    let host = word.split('/').next().unwrap_or_default();
    if is_domain(host) && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some(Kind::Url);
    }
    if let Some(rest) = word.strip_prefix('#')
        && rest.starts_with(|c: char| c.is_ascii_alphabetic())
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Some(Kind::Channel);
    }
    if let Some(rest) = word.strip_prefix('@')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Some(Kind::User);
    }
    if let Some(rest) = word.strip_prefix('+')
        && (7..=15).contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(Kind::Phone);
    }
    if is_date_or_time(word) {
        return None;
    }
    if word.bytes().any(|b| b.is_ascii_digit())
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        && !word.contains("..")
    {
        return Some(Kind::Id);
    }
    None
}

fn normalise(word: &str, kind: &Kind) -> String {
    match kind {
        Kind::Channel => word.trim_start_matches('#').to_owned(),
        Kind::User => word.trim_start_matches('@').to_owned(),
        Kind::Iban => word.split_whitespace().collect::<String>().to_ascii_uppercase(),
        Kind::Email => word.to_owned(),
        _ => word.to_owned(),
    }
}

/// File name extensions, which end names that are not domains.
const FILE_EXTENSIONS: &[&str] = &[
    "pdf", "txt", "csv", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "png", "jpg", "jpeg", "gif", "zip", "json", "md",
    "html", "xml", "yaml", "yml", "mp3", "mp4", "mov", "svg", "log", "tar", "gz",
];

/// `example.org`: labels of letters, digits and `-`, a last label of 2–24
/// letters that is no file extension (`report.pdf`).
fn is_domain(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    labels.len() >= 2
        && labels.last().is_some_and(|tld| !FILE_EXTENSIONS.contains(&tld.to_ascii_lowercase().as_str()))
        && labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && labels
            .last()
            .is_some_and(|tld| (2..=24).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// `2024-05-01`, `10:30`, `10:00-10:30`: times are not ids.
pub(super) fn is_date_or_time(word: &str) -> bool {
    let digits_and = |extra: &[u8]| word.bytes().all(|b| b.is_ascii_digit() || extra.contains(&b));
    (word.contains(':') && digits_and(b":-"))
        || (word.len() == 10 && digits_and(b"-") && word.matches('-').count() == 2)
        || word.to_ascii_lowercase().ends_with("am") && digits_and_am(word)
        || word.to_ascii_lowercase().ends_with("pm") && digits_and_am(word)
}

fn digits_and_am(word: &str) -> bool {
    let head = &word[..word.len() - 2];
    !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit() || b == b':')
}

/// An IBAN starting at the first chunk, possibly written in groups of
/// four; its checksum must hold. The IBAN and how many chunks it used.
fn iban_at(chunks: &[(String, bool)]) -> Option<(String, usize)> {
    let first = trim(&chunks.first()?.0);
    let b = first.as_bytes();
    if b.len() < 4 || !b[..2].iter().all(u8::is_ascii_uppercase) || !b[2..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut iban = String::new();
    let mut best = None;
    for (used, (raw, quoted)) in chunks.iter().enumerate() {
        let part = trim(raw);
        if *quoted
            || !part.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            || iban.len() + part.len() > 34
        {
            break;
        }
        iban.push_str(part);
        if (15..=34).contains(&iban.len()) && iban_checksum_ok(&iban) {
            best = Some((iban.clone(), used + 1));
        }
        // Only a group of four continues onto the next chunk.
        if part.len() != 4 && used > 0 || raw.len() != part.len() {
            break;
        }
    }
    best
}

/// ISO 13616: the number with its first four characters moved to the end,
/// letters as 10–35, is 1 modulo 97.
fn iban_checksum_ok(iban: &str) -> bool {
    let moved = iban[4..].bytes().chain(iban[..4].bytes());
    let mut rest: u32 = 0;
    for b in moved {
        let n = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rest = if n >= 10 { (rest * 100 + n) % 97 } else { (rest * 10 + n) % 97 };
    }
    rest == 1
}

/// An amount at the first chunk: `$12`, `12.50 EUR`, `EUR 12.50`, `12
/// euros`. The amount and how many chunks it used.
fn amount_at(chunks: &[(String, bool)]) -> Option<(Stated, usize)> {
    let (raw, quoted) = chunks.first()?;
    if *quoted {
        return None;
    }
    let word = trim(raw);
    let next = chunks.get(1).filter(|(_, q)| !q).map(|(w, _)| trim(w));
    let amount = |value: &str, currency: Option<&str>| Stated {
        kind: Kind::Amount { currency: currency.map(str::to_owned) },
        value: value.to_owned(),
        noun: None,
        qualifier: None,
        role: None,
    };
    for (symbol, code) in SYMBOLS {
        if let Some(number) = word.strip_prefix(*symbol).filter(|n| is_number(n)) {
            return Some((amount(number, Some(code)), 1));
        }
        if let Some(number) = word.strip_suffix(*symbol).filter(|n| is_number(n)) {
            return Some((amount(number, Some(code)), 1));
        }
    }
    if is_number(word) {
        if let Some(code) = next.and_then(currency_code) {
            return Some((amount(word, Some(&code)), 2));
        }
    } else if let (Some(code), Some(number)) = (currency_code(word), next.filter(|n| is_number(n))) {
        return Some((amount(number, Some(&code)), 2));
    }
    None
}

/// `EUR`, `usd`, `euros`: an ISO 4217 code.
fn currency_code(word: &str) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    if let Some((_, code)) = CURRENCY_WORDS.iter().find(|(w, _)| *w == lower) {
        return (*code != "cents").then(|| code.to_string());
    }
    const CODES: &[&str] = &["EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "INR", "CNY"];
    let upper = word.to_ascii_uppercase();
    CODES.contains(&upper.as_str()).then_some(upper)
}

/// `12`, `12.50`, `1,250.00`: a comma only between groups of three
/// digits. `12,50` (a decimal comma) is not read as a number at all, rather
/// than as 1250.
fn is_number(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    let grouped = groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
    !first.is_empty()
        && first.len() <= if whole.contains(',') { 3 } else { usize::MAX }
        && first.bytes().all(|b| b.is_ascii_digit())
        && grouped
        && fraction.is_none_or(|f| !f.is_empty() && f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, String, Option<String>)> {
        stated(text).into_iter().map(|s| (s.kind, s.value, s.noun)).collect()
    }

    #[test]
    fn emails_urls_channels_users_and_phones_are_typed() {
        let found = kinds(
            "Email alice@example.com the article at example.org/news, post it to #general and ping @bob on +14155550123",
        );
        assert_eq!(
            found,
            vec![
                (Kind::Email, "alice@example.com".into(), Some("email".into())),
                (Kind::Url, "example.org/news".into(), Some("article".into())),
                (Kind::Channel, "general".into(), Some("post".into())),
                (Kind::User, "bob".into(), Some("ping".into())),
                (Kind::Phone, "+14155550123".into(), None),
            ]
        );
    }

    #[test]
    fn ibans_are_read_whole_or_in_groups_and_need_a_valid_checksum() {
        let found = kinds("pay 84.20 EUR to IBAN DE89 3704 0044 0532 0130 00, reference INV-2291");
        assert_eq!(found[0], (Kind::Amount { currency: Some("EUR".into()) }, "84.20".into(), Some("pay".into())));
        assert_eq!(found[1], (Kind::Iban, "DE89370400440532013000".into(), Some("iban".into())));
        assert_eq!(found[2], (Kind::Id, "INV-2291".into(), Some("reference".into())));
        assert_eq!(kinds("to GB29NWBK60161331926819")[0].0, Kind::Iban);
        // One digit off: not an IBAN, just an id.
        assert_eq!(kinds("to GB29NWBK60161331926818")[0].0, Kind::Id);
    }

    #[test]
    fn amounts_take_symbols_codes_and_words() {
        for (text, value, code) in
            [("$12", "12", "USD"), ("€9.99", "9.99", "EUR"), ("EUR 5", "5", "EUR"), ("30 euros", "30", "EUR")]
        {
            assert_eq!(kinds(text)[0], (Kind::Amount { currency: Some(code.into()) }, value.into(), None), "{text}");
        }
    }

    #[test]
    fn quoted_text_keeps_its_noun_and_apostrophes_inside_words() {
        let found = kinds("reply saying I'll be there with subject 'Invoice 2024-17' and label `stale`");
        assert_eq!(found[0], (Kind::Quoted, "Invoice 2024-17".into(), Some("subject".into())));
        assert_eq!(found[1], (Kind::Quoted, "stale".into(), Some("label".into())));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn addresses_keep_whose_they_are_and_lists_share_their_noun() {
        let found = stated("Send from support@example.com to a@example.org and b@example.org, cc c@example.org");
        let roles: Vec<Option<&str>> = found.iter().map(|s| s.role.as_deref()).collect();
        assert_eq!(roles, [Some("from"), Some("to"), Some("to"), Some("cc")]);
        let found = kinds("a poll with the options '12:00' and '13:00', or 'later'");
        let nouns: Vec<Option<&str>> = found.iter().map(|(_, _, n)| n.as_deref()).collect();
        assert_eq!(nouns, [Some("option"), Some("option"), Some("option")]);
    }

    #[test]
    fn what_the_goal_rules_out_is_not_stated() {
        let found = stated("Send to billing@client.example, not old@client.example; don't cc boss@corp.example.");
        let values: Vec<&str> = found.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["billing@client.example"]);
    }

    #[test]
    fn a_decimal_comma_is_no_thousands_separator() {
        assert_eq!(kinds("pay €1,250.00")[0].1, "1,250.00");
        assert!(!kinds("pay 12,50 EUR").iter().any(|(k, ..)| matches!(k, Kind::Amount { .. })));
        assert!(stated(&"#a ".repeat(500)).len() <= MAX_STATED);
    }

    #[test]
    fn dates_and_times_are_not_ids() {
        assert!(kinds("tomorrow 10:00-10:30 on 2024-05-01 at 9am").is_empty());
        assert_eq!(kinds("issue 42")[0], (Kind::Id, "42".into(), Some("issue".into())));
    }
}
