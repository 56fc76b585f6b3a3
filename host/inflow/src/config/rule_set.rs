//! The checks between rules: each rule has its own id, parent topic and consumer group, and the
//! extra topic filters a rule may publish to (`target.allow_topics`) reach no other rule's parent
//! topic. A rule is checked against a set of rules already accepted — the earlier `[[rule]]`s of
//! the file, or the running rules when the admin API changes one — and every error names the
//! other rule.

use super::error::Errors;
use super::model::RuleConfig;
use std::collections::HashMap;

/// Accepted rules, indexed by what a new rule may not share with them.
#[derive(Default)]
pub(super) struct RuleSet {
    /// How each rule is named in messages: its place in the file, or `rule "<id>"`.
    names: Vec<String>,
    ids: HashMap<String, usize>,
    parents: HashMap<String, usize>,
    groups: HashMap<String, usize>,
    /// The `allow_topics` filters by their first level (`+` and `#` under their own), since that
    /// level alone decides which parent topics a filter reaches.
    allowances: HashMap<String, Vec<(String, usize)>>,
}

impl RuleSet {
    /// The set of running rules, each named `rule "<id>"`.
    pub(super) fn of(rules: &[RuleConfig]) -> RuleSet {
        let mut set = RuleSet::default();
        for rule in rules {
            set.add(rule, format!("rule {:?}", rule.id));
        }
        set
    }

    /// Adds `rule`, named `name` in the errors of the rules checked after it. What an earlier
    /// rule holds stays its own.
    pub(super) fn add(&mut self, rule: &RuleConfig, name: String) {
        let index = self.names.len();
        self.names.push(name);
        for (map, key) in [(&mut self.ids, &rule.id), (&mut self.parents, &rule.parent_topic), (&mut self.groups, &rule.source.group)] {
            if !key.is_empty() {
                map.entry(key.clone()).or_insert(index);
            }
        }
        for filter in &rule.allow_topics {
            self.allowances.entry(first_level(filter).to_string()).or_default().push((filter.clone(), index));
        }
    }

    /// Adds to `errors` what `rule` (at `place`) shares with the rules of the set, each at the
    /// field it shares (a form shows the mistake beside that field).
    pub(super) fn check(&self, rule: &RuleConfig, place: &str, errors: &mut Errors) {
        if let Some(other) = self.holder(&self.ids, &rule.id) {
            errors.add(format!("{place} id"), format!("rule id {:?} is also used by {other}", rule.id), "give every rule its own id");
        }
        if let Some(other) = self.holder(&self.parents, &rule.parent_topic) {
            errors.add(
                format!("{place} target.parent_topic"),
                format!("parent topic {:?} is also the target of {other}; one rule per MQTT parent topic", rule.parent_topic),
                "give one of the two rules another target.parent_topic, or merge them",
            );
        }
        if let Some(other) = self.holder(&self.groups, &rule.source.group) {
            errors.add(
                format!("{place} source.group"),
                format!("consumer group {:?} is also used by {other}", rule.source.group),
                "give each rule its own source.group (or leave it out: it defaults to inflow-<id>)",
            );
        }
        self.check_allowances_of(rule, place, errors);
        self.check_allowances_reaching(rule, place, errors);
    }

    /// The rule's own filters against the other rules' parent topics.
    fn check_allowances_of(&self, rule: &RuleConfig, place: &str, errors: &mut Errors) {
        for (index, filter) in rule.allow_topics.iter().enumerate() {
            let mut reached = self.parents_reached_by(filter);
            reached.retain(|&(parent, _)| parent != rule.parent_topic);
            let Some(&(parent, owner)) = reached.first() else { continue };
            let more = match reached.len() - 1 {
                0 => String::new(),
                n => format!(" (and the parent topics of {n} more rule(s))"),
            };
            errors.add(
                format!("{place} target.allow_topics[{index}]"),
                format!(
                    "topic filter {filter:?} reaches parent topic {parent:?} of {}{more}; a rule owns its parent topic and everything under it",
                    self.names[owner]
                ),
                "narrow the filter to topics under a first level that no other rule has as its parent topic",
            );
        }
    }

    /// The other rules' filters against the rule's parent topic.
    fn check_allowances_reaching(&self, rule: &RuleConfig, place: &str, errors: &mut Errors) {
        if rule.parent_topic.is_empty() {
            return;
        }
        let reaching = [rule.parent_topic.as_str(), "+", "#"].into_iter().filter_map(|level| self.allowances.get(level)).flatten();
        for (filter, owner) in reaching {
            errors.add(
                format!("{place} target.parent_topic"),
                format!(
                    "parent topic {:?} is reached by topic filter {filter:?} in target.allow_topics of {}; a rule owns its parent topic and everything under it",
                    rule.parent_topic, self.names[*owner]
                ),
                "give this rule another target.parent_topic, or narrow the other rule's filter",
            );
        }
    }

    /// The parent topics (and their rules, in the order they were added) that `filter` matches
    /// or matches topics under. Parent topics are single levels, so the filter's first level
    /// decides: a wildcard reaches all of them, a name only the parent of that name.
    fn parents_reached_by(&self, filter: &str) -> Vec<(&str, usize)> {
        let mut reached: Vec<(&str, usize)> = match first_level(filter) {
            "+" | "#" => self.parents.iter().map(|(parent, &owner)| (parent.as_str(), owner)).collect(),
            level => self.parents.get_key_value(level).map(|(parent, &owner)| (parent.as_str(), owner)).into_iter().collect(),
        };
        reached.sort_by_key(|&(_, owner)| owner);
        reached
    }

    fn holder(&self, map: &HashMap<String, usize>, key: &str) -> Option<&str> {
        if key.is_empty() {
            return None;
        }
        map.get(key).map(|&index| self.names[index].as_str())
    }
}

fn first_level(filter: &str) -> &str {
    filter.split('/').next().unwrap_or_default()
}
