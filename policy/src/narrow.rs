//! Narrowing: what an owner may take away from a spec before approving it.
//! The result is built from the spec and the owner's choices only, so it is
//! never wider: every request it allows, the original allows too. The one
//! choice that loosens is the owner's own: dropping `confirm` from a rule
//! (`no_confirm`) lets the calls that rule already allows go without asking
//! for each; it never allows a request the spec does not.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Issue, PolicyError};
use crate::spec::{PermitSpec, RateLimit};

/// An owner's narrowing choices. Empty: the spec as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    /// Rules to drop, by integration name and index in its `rules`. An
    /// integration left without rules is dropped, with its secrets.
    pub drop_rules: BTreeSet<(String, usize)>,
    /// A stricter rate limit per integration name: no more calls per window
    /// and no shorter window than the spec's, or any limit where it has none.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// Rules, by integration name and index, whose `confirm` the owner
    /// drops ("don't ask for each call"); each must have `confirm`.
    pub no_confirm: BTreeSet<(String, usize)>,
}

impl Narrowing {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.drop_rules.is_empty() && self.rate_limits.is_empty() && self.no_confirm.is_empty()
    }
}

impl PermitSpec {
    /// This spec with `narrowing` applied, or why it cannot be: a choice
    /// naming no integration or rule of the spec, a rate limit that is not
    /// stricter, or nothing left. The result still needs compiling.
    pub fn narrow(&self, narrowing: &Narrowing) -> Result<PermitSpec, PolicyError> {
        let mut issues = Vec::new();
        let known = |name: &str| self.integrations.iter().find(|i| i.name == name);
        for (name, index) in &narrowing.drop_rules {
            match known(name) {
                None => issues.push(Issue::new("drop_rules", format!("the spec has no integration {name:?}"))),
                Some(integration) if *index >= integration.rules.len() => {
                    issues.push(Issue::new("drop_rules", format!("{name:?} has no rule {index}")))
                }
                Some(_) => {}
            }
        }
        for (name, index) in &narrowing.no_confirm {
            match known(name).map(|i| i.rules.get(*index)) {
                None => issues.push(Issue::new("no_confirm", format!("the spec has no integration {name:?}"))),
                Some(None) => issues.push(Issue::new("no_confirm", format!("{name:?} has no rule {index}"))),
                Some(Some(rule)) if !rule.confirm => issues
                    .push(Issue::new("no_confirm", format!("rule {index} of {name:?} does not ask for confirmation"))),
                Some(Some(_)) => {}
            }
        }
        for (name, limit) in &narrowing.rate_limits {
            let path = format!("rate_limits.{name}");
            match known(name) {
                None => issues.push(Issue::new(path, "the spec has no such integration")),
                Some(_) if limit.max_calls == 0 || limit.window_seconds == 0 => {
                    issues.push(Issue::new(path, "max_calls and window_seconds must be at least 1"))
                }
                Some(integration) => {
                    if let Some(current) = integration.rate_limit
                        && !(limit.max_calls <= current.max_calls && limit.window_seconds >= current.window_seconds)
                    {
                        issues.push(Issue::new(
                            path,
                            format!(
                                "{} calls per {} s is not stricter than the spec's {} per {} s",
                                limit.max_calls, limit.window_seconds, current.max_calls, current.window_seconds
                            ),
                        ));
                    }
                }
            }
        }
        if !issues.is_empty() {
            return Err(PolicyError::Invalid(issues));
        }

        let mut narrowed = self.clone();
        narrowed.integrations.retain_mut(|integration| {
            let name = integration.name.clone();
            for (index, rule) in integration.rules.iter_mut().enumerate() {
                if narrowing.no_confirm.contains(&(name.clone(), index)) {
                    rule.confirm = false;
                }
            }
            let mut index = 0;
            integration.rules.retain(|_| {
                let keep = !narrowing.drop_rules.contains(&(name.clone(), index));
                index += 1;
                keep
            });
            if let Some(limit) = narrowing.rate_limits.get(&name) {
                integration.rate_limit = Some(*limit);
            }
            !integration.rules.is_empty()
        });
        if narrowed.integrations.is_empty() {
            return Err(PolicyError::Invalid(vec![Issue::new(
                "drop_rules",
                "that drops every rule; deny the request instead",
            )]));
        }
        Ok(narrowed)
    }
}
