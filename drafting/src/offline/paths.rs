//! Narrowing a documented path template to a glob: path parameters the
//! goal gives a value for become literal segments, the rest `*`.

use crate::goal::{Goal, GoalValue, Kind, split_words};
use crate::openapi::Vocab;

/// What became of one path parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fill {
    /// Filled with a value the goal gives; `from` quotes where; `named`
    /// when a noun named it (`issue 42`).
    Value { param: String, value: String, from: String, named: bool },
    /// Left as `*`, and why; `taken` when the goal's value for it names
    /// what another operation acts on.
    Open { param: String, why: String, taken: bool },
}

/// A path template narrowed for one goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Narrowed {
    /// The rule's path glob.
    pub glob: String,
    /// Each parameter, in path order.
    pub fills: Vec<Fill>,
}

impl Narrowed {
    /// How many parameters the goal filled.
    pub(super) fn filled(&self) -> usize {
        self.fills.iter().filter(|f| matches!(f, Fill::Value { .. })).count()
    }

    /// The values the goal's named values (`issue 42`) filled.
    pub(super) fn named_values(&self) -> Vec<String> {
        self.fills
            .iter()
            .filter_map(|f| match f {
                Fill::Value { value, named: true, .. } => Some(value.clone()),
                _ => None,
            })
            .collect()
    }

    /// `param = value` for each parameter the goal filled.
    pub(super) fn pinned(&self) -> Vec<String> {
        self.fills
            .iter()
            .filter_map(|f| match f {
                Fill::Value { param, value, .. } => Some(format!("{{{param}}} = {value}")),
                Fill::Open { .. } => None,
            })
            .collect()
    }

    /// The parameters left open because the goal's value for them names
    /// what an earlier operation acts on (`delete the items that item 42
    /// lists`): a target the goal does not fix for this one.
    pub(super) fn taken(&self) -> Vec<String> {
        self.fills
            .iter()
            .filter_map(|f| match f {
                Fill::Open { param, taken: true, .. } => Some(format!("{{{param}}}")),
                _ => None,
            })
            .collect()
    }

    /// One line for the rationale, e.g. "{owner} = `acme`, {repo} = … ".
    pub(super) fn describe(&self) -> String {
        let parts: Vec<String> = self
            .fills
            .iter()
            .map(|fill| match fill {
                Fill::Value { param, value, from, .. } => format!("{{{param}}} = `{value}` (from {from})"),
                Fill::Open { param, why, .. } => format!("{{{param}}} left as `*` ({why})"),
            })
            .collect();
        parts.join(", ")
    }
}

enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
    /// Partly templated (`issue-{id}`): only `*` can stand for it.
    Partial(&'a str),
}

/// Narrows `template` (`/repos/{owner}/{repo}/issues`) with the goal's
/// values. `Err` when a literal segment cannot be written in normal form.
pub(super) fn narrow(template: &str, goal: &Goal) -> Result<Narrowed, String> {
    narrow_except(template, goal, &[])
}

/// [`narrow`], without filling any parameter from a named value in `taken`
/// (`issue 42` already fills the path of the operation that reads it).
pub(super) fn narrow_except(template: &str, goal: &Goal, taken: &[String]) -> Result<Narrowed, String> {
    let segments: Vec<Segment> = template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !name.contains(['{', '}']) => Segment::Param(name),
            _ if s.contains('{') => Segment::Partial(s),
            _ => Segment::Literal(s),
        })
        .collect();
    let mut out: Vec<Option<String>> = vec![None; segments.len()];
    let mut fills: Vec<Option<Fill>> = vec![None; segments.len()];
    fill_pairs(&segments, goal, &mut out, &mut fills);
    fill_named(&segments, goal, taken, &mut out, &mut fills);
    fill_typed(&segments, goal, &mut out, &mut fills);
    fill_parent(&segments, goal, taken, &mut out, &mut fills);
    let mut parts = Vec::with_capacity(segments.len());
    let mut done = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Literal(text) => {
                if !literal_ok(text) {
                    return Err(format!("`{template}` has a segment the spec format cannot match literally: `{text}`"));
                }
                parts.push(text.to_string());
            }
            Segment::Partial(text) => {
                let before = match i.checked_sub(1).map(|j| &segments[j]) {
                    Some(Segment::Literal(text)) => Some(*text),
                    _ => None,
                };
                let (glob, fill) = partial(text, before, goal, taken);
                parts.push(glob);
                done.push(fill);
            }
            Segment::Param(name) => {
                parts.push(out[i].take().unwrap_or_else(|| "*".into()));
                done.push(fills[i].take().unwrap_or_else(|| Fill::Open {
                    param: name.to_string(),
                    why: format!("the goal names no {}", name.replace('_', " ")),
                    taken: false,
                }));
            }
        }
    }
    Ok(Narrowed { glob: format!("/{}", parts.join("/")), fills: done })
}

/// A segment with one parameter and fixed text around it (Twilio's
/// `{Sid}.json`): the literal segment when the goal names the parameter's
/// value (`call CA123` → `CA123.json`), else `*` with the same text around
/// it (`*.json`). A segment with more than one parameter is `*`.
fn partial(text: &str, before: Option<&str>, goal: &Goal, taken: &[String]) -> (String, Fill) {
    let open = |glob: String, why: &str| (glob, Fill::Open { param: text.to_string(), why: why.into(), taken: false });
    let (Some(start), Some(end)) = (text.find('{'), text.find('}')) else {
        return open("*".into(), "a partly templated segment");
    };
    if start > end || text.matches(['{', '}']).count() != 2 {
        return open("*".into(), "a segment with more than one parameter");
    }
    let (prefix, name, suffix) = (&text[..start], &text[start + 1..end], &text[end + 1..]);
    if [prefix, suffix].iter().any(|t| !t.is_empty() && !literal_ok(t)) {
        return open("*".into(), "a segment whose text the spec format cannot match literally");
    }
    // Read as a parameter after the segment before it (`/calls/{Sid}.json`).
    let mut segments: Vec<Segment> = before.map(Segment::Literal).into_iter().collect();
    segments.push(Segment::Param(name));
    let (mut out, mut fills) = (vec![None; segments.len()], vec![None; segments.len()]);
    fill_named(&segments, goal, taken, &mut out, &mut fills);
    let at = segments.len() - 1;
    let glob = format!("{prefix}*{suffix}");
    match (out[at].take(), fills[at].take()) {
        (Some(value), Some(Fill::Value { from, named, .. })) => {
            let literal = format!("{prefix}{value}{suffix}");
            if literal_ok(&literal) {
                return (literal, Fill::Value { param: name.to_string(), value, from, named });
            }
        }
        // The goal's value names what another operation acts on: open here,
        // and marked so, since a write then waits for the owner.
        (_, Some(open @ Fill::Open { taken: true, .. })) => return (glob, open),
        _ => {}
    }
    open(glob, &format!("the goal names no {}", name.replace('_', " ")))
}

/// `owner/repo` fills two consecutive parameters, pairs in goal order.
fn fill_pairs(segments: &[Segment], goal: &Goal, out: &mut [Option<String>], fills: &mut [Option<Fill>]) {
    let mut pairs = goal.values().iter().filter_map(|v| match v {
        GoalValue::Pair(a, b) => Some((a, b)),
        GoalValue::Named { .. } => None,
    });
    let mut i = 0;
    while i + 1 < segments.len() {
        let (Segment::Param(first), Segment::Param(second)) = (&segments[i], &segments[i + 1]) else {
            i += 1;
            continue;
        };
        let Some((a, b)) = pairs.next() else { return };
        let from = format!("`{a}/{b}` in the goal");
        for (at, param, value) in [(i, first, a), (i + 1, second, b)] {
            if plain_segment(value) {
                out[at] = Some(value.clone());
                fills[at] = Some(Fill::Value {
                    param: param.to_string(),
                    value: value.clone(),
                    from: from.clone(),
                    named: false,
                });
            } else {
                fills[at] = Some(Fill::Open { param: param.to_string(), why: not_plain(value), taken: false });
            }
        }
        i += 2;
    }
}

/// True when a parameter's words make it one that takes an id (`{issue_id}`,
/// `{issueIdOrKey}`).
fn is_id_param(own: &[String]) -> bool {
    own.iter().any(|w| ["id", "gid", "uuid", "sid", "number", "num", "no"].contains(&w.as_str()))
}

/// Words that end a parameter's name without naming another thing.
const ID_WORDS: &[&str] = &["id", "number", "no", "num", "key", "sid", "uuid", "slug", "name", "ref"];

/// `issue 42` fills `{issue}`, `{issue_number}`, `{issue_id}`, or whatever
/// parameter follows an `/issues/` segment, but not `{issue_comment_id}`
/// (`get file 123` is not file version 123). A value after a compound noun
/// ("pull request 5") fills by the compound's first word (`{pull_number}`,
/// `/pulls/{…}`) when the path never names its last word.
fn fill_named(
    segments: &[Segment],
    goal: &Goal,
    taken: &[String],
    out: &mut [Option<String>],
    fills: &mut [Option<Fill>],
) {
    let literal_words: Vec<String> = segments
        .iter()
        .filter_map(|s| if let Segment::Literal(text) = s { Some(split_words(text)) } else { None })
        .flatten()
        .collect();
    for (i, segment) in segments.iter().enumerate() {
        let Segment::Param(name) = segment else { continue };
        if fills[i].is_some() {
            continue;
        }
        let own = split_words(name);
        let after = match i.checked_sub(1).map(|j| &segments[j]) {
            Some(Segment::Literal(text)) => split_words(text).pop(),
            _ => None,
        };
        let fits = |noun: &String| names(&own, noun) || after.as_ref().is_some_and(|a| Vocab::same_word(a, noun));
        // An id parameter takes an id: `checklist 'Launch'` names a
        // checklist, it is not `{idChecklist}`.
        let id_param = is_id_param(&own);
        let usable =
            |value: &String| !taken.contains(value) && (!id_param || value.bytes().any(|b| b.is_ascii_digit()));
        let taken_here = goal.values().iter().any(|v| match v {
            GoalValue::Named { noun, value, .. } => taken.contains(value) && fits(noun),
            GoalValue::Pair(..) => false,
        });
        let found = goal.values().iter().find_map(|v| match v {
            GoalValue::Named { value, .. } if !usable(value) => None,
            GoalValue::Named { noun, value, .. } if fits(noun) => Some((noun.clone(), value)),
            GoalValue::Named { noun, value, lead: Some(lead) }
                if !literal_words.iter().any(|w| Vocab::same_word(w, noun)) && fits(lead) =>
            {
                Some((format!("{lead} {noun}"), value))
            }
            _ => None,
        });
        let Some((noun, value)) = found else {
            if taken_here {
                let why = "the goal's value for it names what an earlier operation acts on".to_owned();
                fills[i] = Some(Fill::Open { param: name.to_string(), why, taken: true });
            }
            continue;
        };
        if plain_segment(value) {
            out[i] = Some(value.clone());
            let from = format!("`{noun} {value}` in the goal");
            fills[i] = Some(Fill::Value { param: name.to_string(), value: value.clone(), from, named: true });
        } else {
            fills[i] = Some(Fill::Open { param: name.to_string(), why: not_plain(value), taken: false });
        }
    }
}

/// `#general` fills `{channel}`, `alice@example.com` fills `{email}`: a
/// parameter named for a kind of value takes the one value of that kind the
/// goal states (none when it states several).
fn fill_typed(segments: &[Segment], goal: &Goal, out: &mut [Option<String>], fills: &mut [Option<Fill>]) {
    for (i, segment) in segments.iter().enumerate() {
        let Segment::Param(name) = segment else { continue };
        if fills[i].is_some() {
            continue;
        }
        let class = crate::pin::Field { name, parents: &[], description: None, format: None }.class();
        let mut values: Vec<&str> = goal
            .stated()
            .iter()
            .filter(|s| !matches!(s.kind, Kind::Id | Kind::Quoted | Kind::Amount { .. }))
            .filter(|s| crate::pin::accepts(class, &s.kind))
            .map(|s| s.value.as_str())
            .collect();
        values.dedup();
        let [value] = values[..] else { continue };
        if plain_segment(value) {
            out[i] = Some(value.to_owned());
            let from = format!("`{value}` in the goal");
            fills[i] = Some(Fill::Value { param: name.to_string(), value: value.to_owned(), from, named: false });
        }
    }
}

/// True when a parameter's words are `noun` (or its abbreviation: `{org}`
/// for "organization"), alone or with an id word.
fn names(own: &[String], noun: &str) -> bool {
    match own {
        [one] => Vocab::same_word(one, noun),
        [one, id] => Vocab::same_word(one, noun) && ID_WORDS.contains(&id.as_str()),
        _ => false,
    }
}

/// "Comment on WEB-142": a value the goal gives after the noun that names
/// the collection following an id parameter (`/issue/{issueIdOrKey}/
/// comment`), and after `on`, `to` or `under`, is what that collection
/// hangs off, so it fills the parameter ("comment 5" is a comment's own
/// id). Only an id parameter, only a value with a digit, and only one
/// such value.
fn fill_parent(
    segments: &[Segment],
    goal: &Goal,
    taken: &[String],
    out: &mut [Option<String>],
    fills: &mut [Option<Fill>],
) {
    for (i, segment) in segments.iter().enumerate() {
        let Segment::Param(name) = segment else { continue };
        if fills[i].is_some() || !is_id_param(&split_words(name)) {
            continue;
        }
        let Some(Segment::Literal(next)) = segments.get(i + 1) else { continue };
        let Some(collection) = split_words(next).pop() else { continue };
        let used = |value: &String| taken.contains(value) || out.iter().flatten().any(|o| o == value);
        let found: Vec<(&String, &String)> = goal
            .values()
            .iter()
            .filter_map(|v| match v {
                GoalValue::Named { noun, value, .. }
                    if Vocab::same_word(&collection, noun)
                        && goal.hangs_off(value)
                        && value.bytes().any(|b| b.is_ascii_digit())
                        && !used(value) =>
                {
                    Some((noun, value))
                }
                _ => None,
            })
            .collect();
        let [(noun, value)] = found[..] else { continue };
        if plain_segment(value) {
            out[i] = Some(value.clone());
            let from = format!("`{noun} on {value}` in the goal");
            fills[i] = Some(Fill::Value { param: name.to_string(), value: value.clone(), from, named: true });
        }
    }
}

fn not_plain(value: &str) -> String {
    let shown: String = value.chars().take(40).collect();
    format!("the goal's value `{shown}` is not a plain path segment")
}

/// Unreserved characters only, and not `.` or `..`: the same bytes in every
/// spelling of the path.
fn plain_segment(value: &str) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// A literal segment the policy's normal form accepts as it is (no `*`,
/// which would be a glob).
fn literal_ok(text: &str) -> bool {
    text != "." && text != ".." && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()+,=:@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(template: &str, goal: &str) -> String {
        narrow(template, &Goal::parse(goal)).unwrap().glob
    }

    #[test]
    fn a_value_after_the_collections_noun_fills_the_id_it_hangs_off() {
        let template = "/rest/api/3/issue/{issueIdOrKey}/comment";
        assert_eq!(glob(template, "Comment on WEB-142: 'Fixed, please retest.'"), "/rest/api/3/issue/WEB-142/comment");
        // Not without a digit, not the collection item's own id, and not
        // into a parameter that takes no id.
        assert_eq!(glob(template, "get comment 10042"), "/rest/api/3/issue/*/comment");
        assert_eq!(glob(template, "Comment on the bug: 'Fixed'"), "/rest/api/3/issue/*/comment");
        assert_eq!(glob("/boards/{board}/comments", "comment on B-7"), "/boards/*/comments");
    }

    #[test]
    fn pairs_and_named_values_fill_parameters() {
        let t = "/repos/{owner}/{repo}/issues/{issue_number}/comments";
        assert_eq!(glob(t, "comment on issue #42 in acme/widgets"), "/repos/acme/widgets/issues/42/comments");
        assert_eq!(glob(t, "list comments in acme/widgets"), "/repos/acme/widgets/issues/*/comments");
        assert_eq!(glob(t, "list comments"), "/repos/*/*/issues/*/comments");
        assert_eq!(glob("/v1/customers/{customer}", "get customer cus_123"), "/v1/customers/cus_123");
        assert_eq!(glob("/labels/{name}", "delete the label `bug`"), "/labels/bug");
        assert_eq!(glob("/", "list things"), "/");
        let merge = "/repos/{owner}/{repo}/pulls/{pull_number}/merge";
        assert_eq!(glob(merge, "merge pull request 5 in acme/widgets"), "/repos/acme/widgets/pulls/5/merge");
        assert_eq!(glob("/pulls/{id}", "get pull request 5"), "/pulls/5");
        assert_eq!(glob("/orgs/{org}/repos/{repo}", "get organization `acme` repository `w`"), "/orgs/acme/repos/w");
        // The path names the compound's last word: the value is not the first word's.
        assert_eq!(glob("/issues/{number}/comments", "get issue comment 5"), "/issues/*/comments");
    }

    #[test]
    fn values_that_are_not_plain_segments_stay_open() {
        let narrowed = narrow("/labels/{name}", &Goal::parse("delete the label `good first issue`")).unwrap();
        assert_eq!(narrowed.glob, "/labels/*");
        assert_eq!(
            narrowed.describe(),
            "{name} left as `*` (the goal's value `good first issue` is not a plain path segment)"
        );
        assert_eq!(glob("/files/{name}", "get file `..`"), "/files/*");
    }

    #[test]
    fn partial_segments_keep_their_text_around_a_star_and_odd_literals_are_refused() {
        assert_eq!(glob("/items/item-{id}", "get item 4"), "/items/item-4");
        assert_eq!(glob("/items/item-{id}", "list the items"), "/items/item-*");
        assert_eq!(glob("/Calls/{Sid}.json", "get call CA1234"), "/Calls/CA1234.json");
        assert_eq!(glob("/Calls/{Sid}.json", "get the call"), "/Calls/*.json");
        assert_eq!(glob("/x/{a}-{b}", "get x"), "/x/*");
        assert_eq!(glob("/x/a}{id}", "get x"), "/x/*");
        // A value another operation takes leaves the segment open, marked taken.
        let goal = Goal::parse("delete the call CA1234");
        let narrowed = narrow_except("/Calls/{Sid}.json", &goal, &["CA1234".to_owned()]).unwrap();
        assert_eq!(narrowed.glob, "/Calls/*.json");
        assert_eq!(narrowed.taken(), vec!["{Sid}"]);
        assert!(narrow("/a b/{x}", &Goal::parse("get a")).is_err());
        assert!(narrow("/a/*", &Goal::parse("get a")).is_err());
    }
}
