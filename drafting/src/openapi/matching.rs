//! The words an operation is known by, and how strongly a goal's word
//! matches them: a literal path segment is the strongest evidence, then
//! the operationId and tags, then the summary.

use std::collections::BTreeSet;

use super::Operation;
use crate::goal::{Action, Goal, split_words};

/// A word in a literal path segment (`/repos/{owner}/{repo}/issues`).
pub(crate) const IN_PATH: u32 = 3;
/// A word in the operationId (after its last `/`: `issues/list-for-repo`
/// names list, for, repo).
pub(crate) const IN_IDENT: u32 = 2;
/// A word in the summary (or the description when there is none), a tag,
/// or an operationId's namespace (`issues/…`).
pub(crate) const IN_TEXT: u32 = 1;

/// Abbreviations APIs write for a goal's words (singular, lower case):
/// `/repos/…` for "repository", `/orgs/…` for "organization". A match
/// through one counts one step below the same match written out.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("repo", "repository"),
    ("org", "organization"),
    ("msg", "message"),
    ("config", "configuration"),
    ("auth", "authorization"),
    ("auth", "authentication"),
];

/// True when `a` and `b` are the same word, or one abbreviates the other.
fn same_word(a: &str, b: &str) -> bool {
    a == b || ABBREVIATIONS.iter().any(|&(short, long)| (a, b) == (short, long) || (a, b) == (long, short))
}

/// The words an operation is known by and the actions it performs.
#[derive(Debug, Clone)]
pub(crate) struct Vocab {
    /// Words of the literal path segments, in order, with repeats.
    pub path: Vec<String>,
    ident: BTreeSet<String>,
    text: BTreeSet<String>,
    /// Words of the last literal path segment: the resource acted on
    /// (`comments` in `/issues/{n}/comments`), or an RPC method's name.
    pub last: Vec<String>,
    /// What the operation does: its method's action, or, for a POST, the
    /// verb an RPC-style segment names (`POST /chat.delete` is a delete) or
    /// its summary opens with ("Update a customer" updates, and only that).
    pub actions: Vec<Action>,
}

impl Vocab {
    /// Reads `operation`'s words.
    pub(crate) fn of(operation: &Operation) -> Vocab {
        let literals = operation.path.split('/').filter(|s| !s.is_empty() && !s.contains('{'));
        let last = literals.clone().next_back().map(split_words).unwrap_or_default();
        let mut path = Vec::new();
        let mut rpc = Vec::new();
        for segment in literals {
            // RPC style (`/chat.postMessage`, `/reactions.add`): the method
            // name after the last `.` opens with its verb. Only a POST is
            // read this way: a PUT to `/bypass-list` or a POST to
            // `/CredentialListMappings.json` lists nothing.
            if operation.method == "POST"
                && let Some((_, name)) = segment.rsplit_once('.')
            {
                rpc.extend(split_words(name).first().and_then(|w| Action::of_verb(w)));
            }
            path.extend(split_words(segment));
        }
        let id = operation.operation_id.as_deref().unwrap_or_default();
        let (namespace, name) = id.rsplit_once('/').unwrap_or(("", id));
        let ident: BTreeSet<String> = split_words(name).into_iter().collect();
        let summary = operation.summary.as_deref().or(operation.description.as_deref()).unwrap_or_default();
        let summary = without_markup(&summary.chars().take(300).collect::<String>());
        let text_words = split_words(&summary);
        let mut text: BTreeSet<String> = text_words.iter().cloned().collect();
        text.extend(split_words(namespace));
        text.extend(operation.tags.iter().flat_map(|t| split_words(t)));
        let mut actions = rpc;
        let said = text_words.first().and_then(|w| Action::of_verb(w));
        if actions.is_empty() && operation.method == "POST" && said.is_some() {
            // A POST whose summary opens with a verb does what it says:
            // Stripe's "Update a customer" is no create.
            actions.extend(said);
        } else if actions.is_empty() {
            actions.extend(Action::of_method(&operation.method));
            if operation.method == "POST" {
                // Stripe-style updates and deletes by POST.
                let verbs = ident.iter().filter(|w| w.as_str() != "post").filter_map(|w| Action::of_verb(w));
                actions.extend(verbs);
            }
        }
        actions.sort();
        actions.dedup();
        Vocab { path, last, ident, text, actions }
    }

    /// How strongly `word` (singular, lower case) names this operation;
    /// 0 when it does not.
    /// A match through an abbreviation counts one step lower.
    pub(crate) fn strength(&self, word: &str) -> u32 {
        self.exact_strength(word).max(self.abbreviated_strength(word))
    }

    /// True when `a` and `b` (singular, lower case) are the same word, or
    /// one abbreviates the other (`repo`, "repository").
    pub(crate) fn same_word(a: &str, b: &str) -> bool {
        same_word(a, b)
    }

    /// How strongly `word` names this operation as written.
    pub(crate) fn exact_strength(&self, word: &str) -> u32 {
        if self.path.iter().any(|w| w == word) {
            IN_PATH
        } else if self.ident.contains(word) {
            IN_IDENT
        } else if self.text.contains(word) {
            IN_TEXT
        } else {
            0
        }
    }

    /// The strength of `word` through an abbreviation (`repo` in the path
    /// for "repository"), one step below the written-out match.
    pub(crate) fn abbreviated_strength(&self, word: &str) -> u32 {
        let other = |w: &String| w != word && same_word(w, word);
        if self.path.iter().any(other) {
            IN_PATH - 1
        } else if self.ident.iter().any(other) {
            IN_IDENT - 1
        } else {
            0
        }
    }

    /// How well `words` name the last literal path segment, what this
    /// operation acts on: 2 when they name every word of it (`pulls` for
    /// "pull request"), 1 some (`required_pull_request_reviews`), 0 none.
    pub(crate) fn names_target(&self, words: &[&str]) -> u8 {
        let named = self.last.iter().filter(|w| words.iter().any(|g| same_word(g, w))).count();
        match named {
            0 => 0,
            n if n == self.last.len() => 2,
            _ => 1,
        }
    }

    /// Path words none of `words` names: fewer means a closer fit.
    pub(crate) fn unmatched_path_words(&self, words: &[&str]) -> usize {
        let distinct: BTreeSet<&str> = self.path.iter().map(String::as_str).collect();
        distinct.iter().filter(|w| !words.iter().any(|g| same_word(g, w))).count()
    }
}

/// `text` without HTML tags (`<p>Updates the customer</p>`), which
/// descriptions often carry.
fn without_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// How relevant `operation` is to `goal`: the strength of each goal noun
/// and verb it matches, plus one when it performs an action asked for.
pub(crate) fn relevance(operation: &Operation, goal: &Goal) -> u32 {
    let vocab = Vocab::of(operation);
    let mut words: Vec<&str> = goal.nouns();
    words.extend(goal.clauses().iter().map(|c| c.verb.as_str()));
    words.sort_unstable();
    words.dedup();
    let score: u32 = words.iter().map(|w| vocab.strength(w)).sum();
    let acts = goal.actions().iter().any(|a| vocab.actions.contains(a));
    score * 2 + u32::from(acts && score > 0)
}

/// How many operations a refusal lists.
const CLOSEST_SHOWN: usize = 8;

/// What an agent writes in `operations` for `op`: its operationId, or
/// `METHOD /path` when it has none; with the other form in parentheses.
pub(crate) fn operation_ref(op: &Operation) -> String {
    match &op.operation_id {
        Some(id) => format!("`{id}` ({} {})", op.method, op.path),
        None => format!("`{} {}`", op.method, op.path),
    }
}

/// The documented operations `words` (and `method`, when given) name most
/// strongly, best first, as [`operation_ref`]s; ties in document order.
pub(crate) fn closest_operations(
    api: &super::ApiDoc,
    words: &[String],
    method: Option<&str>,
    action: Option<Action>,
) -> Vec<String> {
    let mut scored: Vec<(u32, usize)> = api
        .operations
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let vocab = Vocab::of(op);
            let mut score: u32 = words.iter().map(|w| vocab.strength(w)).sum::<u32>() * 2;
            if method.is_some_and(|m| m.eq_ignore_ascii_case(&op.method)) {
                score += 3;
            }
            if action.is_some_and(|a| vocab.actions.contains(&a)) {
                score += 2;
            }
            (score, i)
        })
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.iter().take(CLOSEST_SHOWN).map(|&(_, i)| operation_ref(&api.operations[i])).collect()
}

/// Why an `operations` entry names nothing documented, with the closest
/// operations the document has.
pub(crate) fn closest(api: &super::ApiDoc, entry: &str) -> String {
    let (method, rest) = match entry.split_once(char::is_whitespace) {
        Some((m, rest)) if crate::goal::Action::of_method(&m.to_ascii_uppercase()).is_some() => (Some(m), rest),
        _ => (None, entry),
    };
    let words: Vec<String> = split_words(rest).into_iter().filter(|w| w.len() > 1).collect();
    let closest = closest_operations(api, &words, method, None);
    let mut message = format!("the operation `{entry}` is not documented by this API description");
    if closest.is_empty() {
        message.push_str(&format!("; it documents {} operations, none with these words", api.operations.len()));
    } else {
        message.push_str(&format!("; the closest documented operations are: {}", closest.join(", ")));
    }
    message.push_str(". Name operations by operationId or as `METHOD /path/template` exactly as documented");
    message
}
