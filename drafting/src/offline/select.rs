//! Picking the documented operations a goal asks for.
//!
//! Each clause's noun groups are matched in turn against the operations
//! that perform the clause's action. Candidates are ranked by, in order:
//! how many of the group's words name them at all (in the path, the
//! operationId, the summary or tags, written out or abbreviated: `repos`
//! for "repository"); how many path parameters the goal's values fill
//! (`get the repository acme/widgets` is `/repos/{owner}/{repo}`, not
//! `/repositories`); how fully the group (or the verb) names the last
//! literal path segment, the resource acted on (`create a pull request`
//! is `POST …/pulls`, not `POST …/pulls/comments/{id}/reactions`); the
//! clause's other nouns; for "my …", a path under the authenticated user
//! (`/user/repos`, `/me/playlists`) over global lists and paths with a
//! user parameter; whether the shape fits (a collection for "list",
//! one item for "get issue 42"); GET for reads and PATCH over PUT for
//! updates; fewer path words the goal does not name (`DELETE /droplets/
//! {id}` over `DELETE /firewalls/{id}/droplets`); and only then how
//! strongly the words name them (path 3, operationId 2, summary/tags 1)
//! and how strongly the verb does: a verbose operationId repeating the
//! goal's words is weak evidence next to the path. A tie at
//! the top between different operations is ambiguous and refused.

use std::cmp::Reverse;

use super::paths;
use crate::goal::{Action, Clause, Goal};
use crate::openapi::{ApiDoc, IN_IDENT, Operation, Vocab, closest_operations};
use crate::text::{clip, one_line};

/// One picked operation and why.
#[derive(Debug, Clone)]
pub(super) struct Pick<'a> {
    /// The operation.
    pub op: &'a Operation,
    /// Its index in the document.
    pub index: usize,
    /// The clauses that asked for it (indices into `goal.clauses()`).
    pub clauses: Vec<usize>,
    /// Where the goal first asked for it: (clause, noun group).
    at: (usize, usize),
    /// One line for the rationale.
    pub why: String,
}

/// Ranking key: larger is better.
type Key = (usize, usize, u8, u32, u8, bool, u8, Reverse<usize>, u32, u32);

/// Picks the operations `goal` asks for, in the order the goal asks
/// (not document order, so that ranking alone decides).
pub(super) fn select<'a>(api: &'a ApiDoc, goal: &Goal) -> Result<Vec<Pick<'a>>, String> {
    let vocabs: Vec<Vocab> = api.operations.iter().map(Vocab::of).collect();
    let mut picks: Vec<Pick<'a>> = Vec::new();
    for (ci, clause) in goal.clauses().iter().enumerate() {
        let mut covered: Vec<String> = Vec::new();
        let mut found = false;
        for (gi, group) in clause.groups.iter().enumerate() {
            let nouns: Vec<&str> =
                group.iter().map(String::as_str).filter(|n| !covered.iter().any(|c| c == n)).collect();
            if nouns.is_empty() {
                continue;
            }
            let mut ranked: Vec<(Key, usize)> = Vec::new();
            for (index, vocab) in vocabs.iter().enumerate() {
                if !vocab.actions.contains(&clause.action) {
                    continue;
                }
                let strongest = nouns.iter().map(|n| vocab.strength(n)).max().unwrap_or(0);
                // Later groups may be fields of what was already picked ("an
                // issue with a title and labels"), and borrowed nouns ("… and
                // delete it") are a guess: only a strong match counts for them.
                if strongest == 0 || ((gi > 0 || clause.borrowed) && strongest < IN_IDENT) {
                    continue;
                }
                ranked.push((key(&api.operations[index], vocab, clause, &nouns, goal), index));
            }
            ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let Some(&(best, index)) = ranked.first() else { continue };
            let tied: Vec<usize> = ranked.iter().take_while(|(k, _)| *k == best).map(|(_, i)| *i).collect();
            if tied.len() > 1 {
                return Err(ambiguous(api, clause, &nouns, &tied));
            }
            found = true;
            let op = &api.operations[index];
            let vocab = &vocabs[index];
            covered.extend(nouns.iter().filter(|n| vocab.strength(n) > 0).map(|n| n.to_string()));
            covered.extend(fields(op).into_iter().filter(|f| goal.mentions(f)));
            match picks.iter_mut().find(|p| p.index == index) {
                Some(pick) => pick.clauses.push(ci),
                None => picks.push(Pick {
                    op,
                    index,
                    clauses: vec![ci],
                    at: (ci, gi),
                    why: why(api, op, vocab, clause, &nouns),
                }),
            }
        }
        if !found {
            return Err(no_match(api, clause));
        }
    }
    picks.sort_by_key(|p| p.at);
    Ok(picks)
}

/// The operations the agent named in `operations`, in its order, each
/// once; the clauses of the goal that perform its action go with it (for
/// the body fields their verbs imply). `Err` names an entry that is not
/// documented and the closest ones that are.
pub(super) fn named<'a>(api: &'a ApiDoc, goal: &Goal, entries: &[String]) -> Result<Vec<Pick<'a>>, String> {
    let mut picks: Vec<Pick<'a>> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let index = api.find_operation(entry)?;
        if picks.iter().any(|p| p.index == index) {
            continue;
        }
        let op = &api.operations[index];
        let action = Action::of_method(&op.method);
        let clauses = (0..goal.clauses().len()).filter(|&c| Some(goal.clauses()[c].action) == action).collect();
        picks.push(Pick {
            op,
            index,
            clauses,
            at: (i, 0),
            why: format!("{}: named by the agent in `operations` as `{}`", label(op), clip(&one_line(entry), 120)),
        });
    }
    Ok(picks)
}

fn key(op: &Operation, vocab: &Vocab, clause: &Clause, nouns: &[&str], goal: &Goal) -> Key {
    let mut named = nouns.to_vec();
    named.push(&clause.verb);
    let target = vocab.names_target(&named);
    let covered = nouns.iter().filter(|n| vocab.strength(n) > 0).count();
    let group: u32 = nouns.iter().map(|n| vocab.strength(n)).sum();
    let all = clause.nouns();
    let context: u32 = all.iter().filter(|n| !nouns.contains(n)).map(|n| vocab.strength(n)).sum();
    let narrowed = paths::narrow(&op.path, goal).ok();
    let filled = narrowed.as_ref().map_or(0, |n| n.filled());
    let open = narrowed.as_ref().map_or(0, |n| n.fills.len() - n.filled());
    let mine = if goal.says_mine() { mine(&op.path, open) } else { 0 };
    let item = op.path.rsplit('/').next().is_some_and(|last| last.starts_with('{'));
    let shape = item != clause.wants_collection();
    let method = match (clause.action, op.method.as_str()) {
        (Action::Update, "PATCH") => 2,
        (Action::Update, "PUT") => 1,
        (Action::Read, "GET") => 1,
        _ => 0,
    };
    let mut words = all.clone();
    words.push(&clause.verb);
    let unmatched = Reverse(vocab.unmatched_path_words(&words));
    (covered, filled, target, context, mine, shape, method, unmatched, group, vocab.strength(&clause.verb))
}

/// For a goal about "my" things: 2 for a path under the authenticated user
/// (a literal `user` or `me` segment) with no parameter left open, 1 for
/// one with some left open, 0 for any other path.
fn mine(path: &str, open: usize) -> u8 {
    let own = path.split('/').any(|s| s.eq_ignore_ascii_case("user") || s.eq_ignore_ascii_case("me"));
    match (own, open) {
        (false, _) => 0,
        (true, 0) => 2,
        (true, _) => 1,
    }
}

/// Names of the body's top-level properties and the query parameters.
fn fields(op: &Operation) -> Vec<String> {
    let mut names: Vec<String> = op.query_params.iter().map(|p| p.name.clone()).collect();
    if let Some(properties) = op.body.as_ref().and_then(|b| b.schema.get("properties")).and_then(|p| p.as_object()) {
        names.extend(properties.keys().cloned());
    }
    names
}

fn why(api: &ApiDoc, op: &Operation, vocab: &Vocab, clause: &Clause, nouns: &[&str]) -> String {
    let mut matched: Vec<String> = Vec::new();
    for word in std::iter::once(clause.verb.as_str()).chain(nouns.iter().copied()) {
        let (exact, short) = (vocab.exact_strength(word), vocab.abbreviated_strength(word));
        let at = match (exact, short) {
            (3, _) => "path",
            (_, 2) => "path, abbreviated",
            (2, _) => "operationId",
            (_, 1) => "operationId, abbreviated",
            (1, _) => "summary/tags",
            _ => continue,
        };
        let entry = format!("{word} ({at})");
        if !matched.contains(&entry) {
            matched.push(entry);
        }
    }
    let mut line = format!(
        "{}: \"{}\" asks to {} ({}); goal words matched: {}",
        label(op),
        clause.verb,
        action_word(clause.action),
        op.method,
        matched.join(", ")
    );
    if op.method == "PATCH" && api.operations.iter().any(|o| o.method == "PUT" && o.path == op.path) {
        line.push_str(&format!("; PATCH preferred over PUT, both documented for {}", op.path));
    }
    line
}

/// `GET /path (summary)` for messages.
pub(super) fn label(op: &Operation) -> String {
    match op.summary.as_deref().or(op.operation_id.as_deref()) {
        Some(text) => format!("{} {} ({})", op.method, op.path, clip(&one_line(text), 80)),
        None => format!("{} {}", op.method, op.path),
    }
}

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    }
}

fn asked(clause: &Clause, nouns: &[&str]) -> String {
    format!("{} {}", clause.verb, nouns.join(" ")).trim().to_owned()
}

fn ambiguous(api: &ApiDoc, clause: &Clause, nouns: &[&str], tied: &[usize]) -> String {
    let mut names: Vec<String> = tied.iter().map(|&i| label(&api.operations[i])).collect();
    names.sort_by_key(|n| n.split_once(' ').map(|(m, rest)| (rest.to_owned(), m.to_owned())));
    format!(
        "\"{}\" matches {} documented operations equally: {}; say which one you mean, with a word from its path or \
         summary, or name the operations the agent needs in the intent's `operations`",
        asked(clause, nouns),
        tied.len(),
        names.join("; ")
    )
}

fn no_match(api: &ApiDoc, clause: &Clause) -> String {
    let words: Vec<String> =
        std::iter::once(clause.verb.clone()).chain(clause.nouns().into_iter().map(str::to_owned)).collect();
    let closest = closest_operations(api, &words, None, Some(clause.action));
    format!(
        "no documented operation matches \"{}\" ({} → {}); name the resource the way the API does, or name the \
         operations the agent needs in the intent's `operations`. {}",
        asked(clause, &clause.nouns()),
        clause.verb,
        clause.action.methods().join("/"),
        if closest.is_empty() {
            format!("It documents {} operations, none with these words", api.operations.len())
        } else {
            format!("The closest documented operations: {}", closest.join(", "))
        }
    )
}
