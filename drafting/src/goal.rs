//! Reading a goal: which kinds of change it asks for (verbs → methods), the
//! nouns it names, and values it gives (`owner/repo`, `issue 42`).
//! Deterministic and shared by the offline drafter, the LLM prompt trimmer
//! and the grounding checks.
//!
//! A goal is read as clauses: each verb in a clause-opening position (the
//! first verb, or one after `and`, `,`, `then`, `to` …) opens a clause that
//! owns the nouns after it until the next one. Inside a clause, `and` and
//! `,` separate noun groups ("list issues and labels" asks for two things).
//! A verb word elsewhere ("list *open* issues", "add a reaction to *a
//! message*") is not an action.

mod addressed;
mod negation;
mod stated;
mod words;

use std::collections::BTreeSet;

pub(crate) use addressed::{addressed_to_drafter, without_addressed_sentences};
use addressed::{part_addressed_to_drafter, quote};
pub(crate) use negation::without_negated_actions;
use negation::words_read;
pub(crate) use stated::{Kind, Stated};
use words::{Token, tokenize};
pub(crate) use words::{singular, split_words};

/// What a verb asks the API to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// list, get, read, show, search, …: GET.
    Read,
    /// create, add, post, open, comment, send, …: POST.
    Create,
    /// update, edit, close, rename, label, …: PATCH or PUT.
    Update,
    /// delete, remove: DELETE.
    Delete,
}

/// (verb, action, also a noun). Words that are both ("comment", "label")
/// name the thing changed as well.
const VERBS: &[(&str, Action, bool)] = &[
    ("list", Action::Read, false),
    ("get", Action::Read, false),
    ("read", Action::Read, false),
    ("show", Action::Read, false),
    ("search", Action::Read, true),
    ("fetch", Action::Read, false),
    ("find", Action::Read, false),
    ("view", Action::Read, true),
    ("retrieve", Action::Read, false),
    ("lookup", Action::Read, false),
    ("query", Action::Read, true),
    ("create", Action::Create, false),
    ("add", Action::Create, false),
    ("post", Action::Create, true),
    ("open", Action::Create, false),
    ("comment", Action::Create, true),
    ("send", Action::Create, false),
    ("message", Action::Create, true),
    ("submit", Action::Create, false),
    ("publish", Action::Create, false),
    ("write", Action::Create, false),
    ("upload", Action::Create, true),
    ("reply", Action::Create, true),
    ("register", Action::Create, false),
    ("refund", Action::Create, true),
    ("invite", Action::Create, true),
    ("email", Action::Create, true),
    ("pay", Action::Create, false),
    ("transfer", Action::Create, true),
    ("schedule", Action::Create, true),
    ("book", Action::Create, true),
    ("forward", Action::Create, false),
    ("share", Action::Create, true),
    ("notify", Action::Create, false),
    ("tell", Action::Create, false),
    ("dm", Action::Create, true),
    ("draft", Action::Create, true),
    ("request", Action::Create, true),
    ("attach", Action::Create, false),
    ("charge", Action::Create, true),
    ("invoice", Action::Create, true),
    ("update", Action::Update, false),
    ("edit", Action::Update, false),
    ("close", Action::Update, false),
    ("rename", Action::Update, false),
    ("label", Action::Update, true),
    ("modify", Action::Update, false),
    ("change", Action::Update, true),
    ("set", Action::Update, false),
    ("reopen", Action::Update, false),
    ("assign", Action::Update, false),
    ("replace", Action::Update, false),
    ("merge", Action::Update, true),
    ("archive", Action::Update, true),
    ("mark", Action::Update, true),
    ("move", Action::Update, true),
    ("star", Action::Update, true),
    ("complete", Action::Update, false),
    ("reschedule", Action::Update, false),
    ("accept", Action::Update, false),
    ("decline", Action::Update, false),
    ("finalize", Action::Update, false),
    ("cancel", Action::Update, false),
    ("delete", Action::Delete, false),
    ("remove", Action::Delete, false),
    ("destroy", Action::Delete, false),
];

/// Words after which a verb opens a new clause.
const CLAUSE_BREAKS: &[&str] = &["and", "or", "then", "also", "plus", "to", "but", "&"];
/// Words that separate noun groups inside a clause.
const GROUP_BREAKS: &[&str] = &["and", "&", "plus"];
/// Words after which the next word is a noun ("add a reaction to *a
/// message*"), never a verb opening a clause.
const DETERMINERS: &[&str] =
    &["a", "an", "the", "my", "our", "your", "their", "its", "this", "that", "these", "those", "each", "every"];
/// Words skipped between a noun and its value (`issue number 42`).
const VALUE_LEADS: &[&str] = &["number", "no", "id", "named", "called", "#"];
/// Words that never name anything in an API.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "to", "for", "in", "on", "of", "with", "and", "or", "my", "our", "your", "their", "its", "it",
    "them", "they", "this", "that", "these", "those", "all", "any", "some", "each", "every", "from", "by", "at", "as",
    "into", "about", "i", "we", "you", "me", "us", "need", "needs", "want", "wants", "please", "can", "could",
    "should", "would", "will", "be", "is", "are", "was", "new", "one", "ones", "only", "then", "also", "via", "using",
    "use", "so", "just", "like", "may", "might", "must", "when", "where", "which", "who", "what", "how", "if", "not",
    "no", "yes", "do", "does", "agent", "able", "allow", "api", "number", "id", "given", "specific", "single",
    "existing", "but", "plus", "there", "here", "up", "out", "over", "under", "s", "mine",
];

impl Action {
    /// The action a verb asks for, if `word` (lower case) is a known verb.
    pub fn of_verb(word: &str) -> Option<Action> {
        VERBS.iter().find(|(verb, ..)| *verb == word).map(|(_, action, _)| *action)
    }

    /// The action an HTTP method performs.
    pub fn of_method(method: &str) -> Option<Action> {
        match method {
            "GET" => Some(Action::Read),
            "POST" => Some(Action::Create),
            "PUT" | "PATCH" => Some(Action::Update),
            "DELETE" => Some(Action::Delete),
            _ => None,
        }
    }

    /// The methods that perform it, preferred first.
    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Action::Read => &["GET"],
            Action::Create => &["POST"],
            Action::Update => &["PATCH", "PUT"],
            Action::Delete => &["DELETE"],
        }
    }
}

/// A word the goal reads as a verb or as filler.
fn is_filler(word: &str) -> bool {
    Action::of_verb(word).is_some() || STOPWORDS.contains(&word)
}

fn is_dual(word: &str) -> bool {
    VERBS.iter().any(|(verb, _, dual)| *dual && *verb == word)
}

/// One clause: a verb and the noun groups it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// What it asks for.
    pub action: Action,
    /// The verb as written (lower case).
    pub verb: String,
    /// Noun groups (singular, lower case), each naming one thing.
    pub groups: Vec<Vec<String>>,
    /// Nouns named before the first verb, shared context for every group.
    pub context: Vec<String>,
    /// The first noun was written in the plural ("issues").
    pub plural: bool,
    /// The clause names nothing itself; its groups are borrowed from the
    /// next clause ("list and create issues") or the previous one ("… and
    /// close it").
    pub borrowed: bool,
}

impl Clause {
    /// Every noun of the clause, groups first, without repeats.
    pub fn nouns(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.groups.iter().flatten().chain(&self.context).map(String::as_str).filter(|n| seen.insert(*n)).collect()
    }

    /// True when the clause asks for many items rather than one: "list",
    /// "search", or a plural noun with any other reading verb.
    pub fn wants_collection(&self) -> bool {
        match self.action {
            Action::Read => matches!(self.verb.as_str(), "list" | "search" | "query") || self.plural,
            Action::Create => true,
            Action::Update | Action::Delete => false,
        }
    }
}

/// A value the goal gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalValue {
    /// `owner/repo`: two consecutive path segments.
    Pair(String, String),
    /// `issue 42`, `issue #42`, ``label `bug` ``: a value for the preceding
    /// noun (singular, lower case).
    Named {
        /// The noun.
        noun: String,
        /// The value as written.
        value: String,
        /// The word before the noun when the two make one compound noun
        /// ("*pull* request 5", `pull_request 5`): APIs often name the thing
        /// by that first word (`/pulls/{pull_number}`).
        lead: Option<String>,
    },
}

/// A goal, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    text: String,
    clauses: Vec<Clause>,
    values: Vec<GoalValue>,
    /// Typed values, outside the parts addressed to the drafter.
    stated: Vec<Stated>,
    /// Lower-case words and identifiers as written, in order.
    words: Vec<String>,
    /// Words as written, outside quotes and text addressed to the drafter,
    /// each with whether a negation governs it.
    spoken: Vec<(String, bool)>,
    /// The same text, lower case, as one string.
    spoken_text: String,
    /// Values written right after `on`, `to` or `under`.
    hanging: Vec<String>,
    ignored: Vec<String>,
}

/// Words for the authenticated user's own things.
const MINE: &[&str] = &["my", "mine"];

impl Goal {
    /// Reads `text`.
    pub fn parse(text: &str) -> Goal {
        let tokens = tokenize(text);
        let mut reader = Reader::default();
        let mut ignored = Vec::new();
        for part in tokens.split_inclusive(|t| *t == Token::Break) {
            if part_addressed_to_drafter(part) {
                ignored.push(quote(part));
                reader.read(part, 0, &Token::Break);
                continue;
            }
            for (i, token) in part.iter().enumerate() {
                reader.read(part, i, token);
            }
        }
        let words = tokens.iter().filter_map(|t| if let Token::Word(w) = t { Some(w.clone()) } else { None }).collect();
        let hanging = tokens
            .windows(2)
            .filter_map(|pair| match pair {
                [Token::Word(w), Token::Value(v)] if ["on", "to", "under"].contains(&w.as_str()) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let read = if ignored.is_empty() { None } else { without_addressed_sentences(text) };
        let stated = stated::stated(read.as_deref().unwrap_or(text));
        let unquoted = stated::unquoted(read.as_deref().unwrap_or(text));
        let spoken = words_read(&unquoted);
        let spoken_text = unquoted.to_lowercase();
        Goal {
            text: text.to_owned(),
            clauses: reader.finish(),
            values: reader.values,
            stated,
            words,
            spoken,
            spoken_text,
            hanging,
            ignored,
        }
    }

    /// Parts of the goal (between `,` `;` `.`) addressed to the drafter
    /// ("ignore previous instructions …"), which were not read.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// The goal as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The clauses, in goal order; empty when the goal has no verb.
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// The values the goal gives, in goal order.
    pub fn values(&self) -> &[GoalValue] {
        &self.values
    }

    /// The typed values the goal states (emails, IBANs, amounts …), in goal
    /// order, outside text addressed to the drafter.
    pub fn stated(&self) -> &[Stated] {
        &self.stated
    }

    /// Every action asked for, in goal order, without repeats.
    pub fn actions(&self) -> Vec<Action> {
        let mut actions = Vec::new();
        for clause in &self.clauses {
            if !actions.contains(&clause.action) {
                actions.push(clause.action);
            }
        }
        actions
    }

    /// Every noun (singular, lower case), without repeats.
    pub fn nouns(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.clauses.iter().flat_map(Clause::nouns).filter(|n| seen.insert(*n)).collect()
    }

    /// True when the goal names `name` (a property or parameter name such as
    /// `title`, `thread_ts`, `dueDate`): as written, in the singular, or as
    /// consecutive words ("due date").
    pub fn mentions(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        let parts = split_words(name);
        if self.words.iter().any(|w| *w == lower || singular(w) == singular(&lower)) {
            return true;
        }
        parts.len() > 1
            && self.words.windows(parts.len()).any(|window| window.iter().zip(&parts).all(|(w, p)| singular(w) == *p))
    }

    /// The values of a documented enum (`reboot`, `power_off`, `rebuild` …
    /// of a droplet action's `type`) the goal chooses, in its own words
    /// (`Reboot`, `power off`, `power-off`): `None` unless it chooses some
    /// but not all, and says nothing about the others that could be read
    /// another way. A mention that does not count leaves the whole enum
    /// as documented: one negated ("don't rebuild"), one the goal reads as
    /// its own verb or filler (`open`, `comment`, `all`), one of
    /// punctuation or negation (`+1`, `not_planned`). One- and two-letter
    /// values count only as written (`A`, `MX`: not the article "a").
    /// Quoted text is the goal's content and chooses nothing.
    pub fn chooses(&self, values: &[&str]) -> Option<Vec<String>> {
        let split: Vec<(Vec<String>, bool)> = self.spoken.iter().map(|(w, n)| (split_words(w), *n)).collect();
        let flat: Vec<(&str, bool)> =
            split.iter().flat_map(|(parts, n)| parts.iter().map(move |p| (p.as_str(), *n))).collect();
        let mut chosen = Vec::new();
        for value in values {
            let short = value.chars().count() <= 2;
            let parts = split_words(value);
            let punctuated = !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '));
            let readable = !parts.is_empty()
                && !punctuated
                && !parts.iter().any(|p| ["not", "no", "non", "never"].contains(&p.as_str()))
                && !matches!(parts.as_slice(), [one] if is_filler(one));
            // Where it is written: as is for a short value, else word by word.
            let mentions: Vec<bool> = if short {
                self.spoken.iter().filter(|(w, _)| w == value).map(|(_, n)| *n).collect()
            } else if parts.is_empty() {
                vec![]
            } else {
                flat.windows(parts.len())
                    .filter(|window| window.iter().zip(&parts).all(|((w, _), p)| w == p))
                    .map(|window| window.iter().any(|(_, n)| *n))
                    .collect()
            };
            let unreadable_mention = punctuated && self.spoken_text.contains(&value.to_lowercase());
            let asked = (readable || (short && value.chars().any(char::is_uppercase))) && mentions.contains(&false);
            if unreadable_mention || mentions.contains(&true) || (!mentions.is_empty() && !asked) {
                return None;
            }
            if asked {
                chosen.push((*value).to_owned());
            }
        }
        (!chosen.is_empty() && chosen.len() < values.len()).then_some(chosen)
    }

    /// True when `value` is written right after `on`, `to` or `under`
    /// ("comment on WEB-142"): it names what the thing before hangs off,
    /// not the thing itself ("comment 5").
    pub fn hangs_off(&self, value: &str) -> bool {
        self.hanging.iter().any(|v| v == value)
    }

    /// True when the goal speaks of the authenticated user's own things
    /// ("list *my* repositories").
    pub fn says_mine(&self) -> bool {
        self.words.iter().any(|w| MINE.contains(&w.as_str()))
    }

    /// True when the goal asks to create, change or delete something.
    pub fn asks_for_change(&self) -> bool {
        self.clauses.iter().any(|c| c.action != Action::Read)
    }

    /// True when the goal asks to delete or remove something.
    pub fn asks_for_delete(&self) -> bool {
        self.clauses.iter().any(|c| c.action == Action::Delete)
    }
}

/// Walks the tokens once, opening clauses and collecting nouns and values.
#[derive(Default)]
struct Reader {
    clauses: Vec<Clause>,
    /// Nouns before the first verb.
    preamble: Vec<String>,
    values: Vec<GoalValue>,
    /// A verb here opens a clause.
    clause_start: bool,
    /// The next noun opens a new group.
    group_start: bool,
    /// The last noun, for `issue 42`, until something else intervenes.
    last_noun: Option<String>,
    /// The noun just before `last_noun` when the two make a compound.
    lead: Option<String>,
    /// The previous token was a noun.
    noun_before: bool,
    /// The previous word was a determiner: this one is a noun.
    after_determiner: bool,
}

impl Reader {
    fn read(&mut self, tokens: &[Token], i: usize, token: &Token) {
        if !matches!(token, Token::Word(_)) {
            self.after_determiner = false;
        }
        let noun_before = std::mem::take(&mut self.noun_before);
        match token {
            Token::Break => {
                self.clause_start = true;
                self.group_start = true;
                self.last_noun = None;
            }
            Token::Pair(a, b) => {
                self.values.push(GoalValue::Pair(a.clone(), b.clone()));
                self.last_noun = None;
            }
            Token::Value(value) => {
                if let Some(noun) = self.last_noun.take() {
                    let lead = self.lead.take();
                    self.values.push(GoalValue::Named { noun, value: value.clone(), lead });
                }
            }
            Token::Other => self.last_noun = None,
            Token::Word(word) => self.read_word(tokens, i, word, noun_before),
        }
    }

    fn read_word(&mut self, tokens: &[Token], i: usize, word: &str, noun_before: bool) {
        let after_determiner = std::mem::replace(&mut self.after_determiner, DETERMINERS.contains(&word));
        if VALUE_LEADS.contains(&word) && self.last_noun.is_some() {
            return;
        }
        if CLAUSE_BREAKS.contains(&word) {
            self.clause_start = true;
            self.group_start |= GROUP_BREAKS.contains(&word);
            self.last_noun = None;
            return;
        }
        if let Some(action) = Action::of_verb(word) {
            if (self.clauses.is_empty() || self.clause_start) && !after_determiner {
                self.clauses.push(Clause {
                    action,
                    verb: word.to_owned(),
                    groups: Vec::new(),
                    context: Vec::new(),
                    plural: false,
                    borrowed: false,
                });
                self.clause_start = false;
                self.group_start = true;
                self.last_noun = None;
                if is_dual(word) {
                    self.noun(word, false, false);
                    // The verb names the thing, but is no compound's first
                    // word: "invoice customer cus_1" is no "invoice cus_1".
                    self.noun_before = false;
                }
                return;
            }
            if !is_dual(word) {
                // An adjective here ("list open issues"), not an action.
                self.last_noun = None;
                return;
            }
        }
        if STOPWORDS.contains(&word) {
            return;
        }
        self.clause_start = false;
        let plural = singular(word) != word && !matches!(tokens.get(i + 1), Some(Token::Value(_)));
        self.noun(word, plural, noun_before);
    }

    /// Reads a noun; `compound` when the previous token was a noun too
    /// ("pull request").
    fn noun(&mut self, word: &str, plural: bool, compound: bool) {
        let nouns = split_words(word);
        self.lead = match nouns.len() {
            0 | 1 if compound => self.last_noun.clone(),
            0 | 1 => None,
            n => Some(nouns[n - 2].clone()),
        };
        self.last_noun = nouns.last().cloned();
        self.noun_before = true;
        let Some(clause) = self.clauses.last_mut() else {
            self.preamble.extend(nouns);
            return;
        };
        if clause.groups.is_empty() {
            clause.plural = plural;
        }
        if self.group_start || clause.groups.is_empty() {
            clause.groups.push(Vec::new());
            self.group_start = false;
        }
        if let Some(group) = clause.groups.last_mut() {
            for noun in nouns {
                if !group.contains(&noun) {
                    group.push(noun);
                }
            }
        }
    }

    /// Shares the preamble with every clause and gives clauses without nouns
    /// ("list and create issues") those of the next clause, else the previous.
    fn finish(&mut self) -> Vec<Clause> {
        let mut clauses = std::mem::take(&mut self.clauses);
        for clause in &mut clauses {
            clause.context = self.preamble.clone();
        }
        for i in 0..clauses.len() {
            if clauses[i].groups.is_empty() {
                let donor =
                    clauses[i + 1..].iter().find(|c| !c.groups.is_empty()).map(|c| (c.groups.clone(), c.plural));
                let donor = donor.or_else(|| {
                    clauses[..i].iter().rev().find(|c| !c.groups.is_empty()).map(|c| (c.groups.clone(), c.plural))
                });
                if let Some((groups, plural)) = donor {
                    clauses[i].groups = groups;
                    clauses[i].plural = plural;
                    clauses[i].borrowed = true;
                }
            }
        }
        clauses
    }
}

#[cfg(test)]
mod tests;
