//! The rules folder (`[rules] dir`): one `<id>.toml` per rule beside the `[[rule]]`s of the
//! config file, each checked exactly as those are (same code, same messages) and against them.
//! The admin API writes these files (atomically: write, then rename), and the folder is watched,
//! so a file dropped in by hand is a rule as well. `.state.json` in the same folder keeps the
//! enabled state the API gave to the config file's own rules, which the API may not edit.

use super::error::{ConfigError, ConfigErrors, Errors};
use super::model::RuleConfig;
use super::raw::RawRule;
use super::rule::{check_rule, unreadable_rule, PluginLookup};
use super::rule_set::RuleSet;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The file of the folder that keeps the enabled state of the config file's rules.
pub const STATE_FILE: &str = ".state.json";

/// The rules of a folder that passed every check, and the files refused with their mistakes.
#[derive(Debug, Default)]
pub struct RuleFolder {
    pub rules: Vec<RuleConfig>,
    pub refused: Vec<(PathBuf, ConfigErrors)>,
}

/// The file a rule of the folder lives in.
pub fn rule_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.toml"))
}

/// Reads every `*.toml` file of `dir`, in name order, as one rule each. A file is checked
/// against `main` (the config file's rules) and the files accepted before it; a file with a
/// mistake is refused on its own and the others still count. A folder that does not exist
/// holds no rules.
pub fn read_rule_folder<'a>(dir: &Path, main: impl IntoIterator<Item = &'a RuleConfig>, plugins: &PluginLookup<'_>) -> RuleFolder {
    let mut folder = RuleFolder::default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| is_rule_file(p)).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return folder,
        Err(e) => {
            let problem = format!("cannot read the rules folder: {e}");
            folder.refused.push((dir.to_path_buf(), ConfigErrors::single(dir.display().to_string(), problem, "make the folder readable by inflow")));
            return folder;
        }
    };
    files.sort();
    let mut accepted = RuleSet::default();
    for rule in main {
        accepted.add(rule, format!("rule {:?} of the config file", rule.id));
    }
    for path in files {
        match read_rule_file(&path, &accepted, plugins) {
            Ok(rule) => {
                accepted.add(&rule, path.display().to_string());
                folder.rules.push(rule);
            }
            Err(errors) => folder.refused.push((path, errors)),
        }
    }
    folder
}

/// A rules-folder file: a `*.toml` that is not an editor's or our own temporary file.
pub fn is_rule_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    path.extension().is_some_and(|e| e == "toml") && !name.starts_with('.')
}

fn read_rule_file(path: &Path, accepted: &RuleSet, plugins: &PluginLookup<'_>) -> Result<RuleConfig, ConfigErrors> {
    let place = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::single(&place, format!("cannot read the file: {e}"), "make the file readable by inflow"))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| ConfigErrors::single(&place, format!("not valid TOML: {e}"), "fix the TOML syntax at the place shown"))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
    let mut errors = Errors::default();
    let table = match table.get("id") {
        None => with_id(table, &stem),
        Some(toml::Value::String(id)) if *id == stem => table,
        Some(id) => {
            errors.add(format!("{place} id"), format!("id {id} is not the file's name {stem:?}"), format!("name the file <id>.toml, or write id = {stem:?}"));
            table
        }
    };
    let raw: RawRule = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigErrors(vec![unreadable_rule(&place, e.message().to_string())]))?;
    let rule = check_rule(raw, &place, plugins, &mut errors);
    accepted.check(&rule, &place, &mut errors);
    errors.into_result(rule)
}

fn with_id(mut table: toml::Table, id: &str) -> toml::Table {
    table.insert("id".into(), toml::Value::String(id.into()));
    table
}

/// The text of a rule file for a rule written as JSON (the admin API's body): the same fields,
/// as TOML. JSON nulls mean "not given" and are left out.
pub fn rule_file_text(rule: &serde_json::Value) -> Result<String, ConfigError> {
    let value = toml::Value::try_from(without_nulls(rule.clone()))
        .map_err(|e| ConfigError::new("rule", format!("cannot be written as TOML: {e}"), "send a rule as a JSON object of the documented fields"))?;
    let header = "# Written by inflow's admin API; edits by hand are picked up too.\n";
    toml::to_string(&value).map(|text| format!("{header}{text}")).map_err(|e| ConfigError::new("rule", format!("cannot be written as TOML: {e}"), "send a rule as a JSON object of the documented fields"))
}

/// `value` without its nulls, which in a rule mean "not given" (the default).
pub fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

/// A rule file's fields as JSON, for an update that changes only some of them (enable, disable).
pub fn read_rule_file_json(path: &Path) -> std::io::Result<serde_json::Value> {
    let table: toml::Table = toml::from_str(&std::fs::read_to_string(path)?).map_err(std::io::Error::other)?;
    serde_json::to_value(table).map_err(std::io::Error::other)
}

/// The enabled state the API gave to rules of the config file, by id.
pub fn read_state(dir: &Path) -> Result<BTreeMap<String, bool>, String> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            #[derive(serde::Deserialize)]
            struct State {
                enabled: BTreeMap<String, bool>,
            }
            serde_json::from_slice::<State>(&bytes).map(|s| s.enabled).map_err(|e| format!("{}: {e}; delete it to forget the enabled states it kept", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The text of the state file for these enabled states.
pub fn state_text(enabled: &BTreeMap<String, bool>) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "enabled": enabled })).expect("a map of strings to booleans is JSON")
}

/// Writes `path` so that a reader (another host, the watcher, a crash) sees the old file or the
/// new one, never half of one: a hidden temporary file in the same folder, synced, renamed over.
/// Creates the folder when it is missing.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn any_plugin(_: &Path, _: &str) -> bool {
        true
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("inflow-rule-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn main_rule() -> RuleConfig {
        let plugins = PluginLookup { dir: Path::new("/p"), exists: &any_plugin };
        super::super::validate_rule(json!({"id": "main-1", "source": {"topic": "T"}, "target": {"parent_topic": "plant"}}), &[], &plugins).unwrap()
    }

    #[test]
    fn a_folder_of_rule_files_is_read_in_name_order_and_bad_files_are_refused_alone() {
        let dir = scratch("read");
        let write = |name: &str, text: &str| write_atomically(&dir.join(name), text.as_bytes()).unwrap();
        write("b-rule.toml", "source = { topic = \"T\" }\ntarget = { parent_topic = \"b\" }\n");
        write("a-rule.toml", "id = \"a-rule\"\nenabled = false\nsource = { topic = \"T\" }\ntarget = { parent_topic = \"a\" }\n");
        write("c-rule.toml", "id = \"other\"\nsource = { topic = \"T\" }\ntarget = { parent_topic = \"c\" }\n");
        write("d-rule.toml", "source = { topic = \"T\" }\ntarget = { parent_topic = \"plant\" }\n");
        write("e-rule.toml", "source = { topic = \"T\" }\ntarget = { parent_topic = \"b\" }\n");
        write("notes.txt", "not a rule");
        write(".f-rule.toml.1.tmp", "half a rule");
        let plugins = PluginLookup { dir: Path::new("/p"), exists: &any_plugin };
        let folder = read_rule_folder(&dir, &[main_rule()], &plugins);
        let ids: Vec<_> = folder.rules.iter().map(|r| (r.id.as_str(), r.enabled)).collect();
        assert_eq!(ids, [("a-rule", false), ("b-rule", true)]);
        let refused: BTreeMap<String, String> = folder
            .refused
            .iter()
            .map(|(p, e)| (p.file_name().unwrap().to_string_lossy().into_owned(), e.to_string()))
            .collect();
        assert_eq!(refused.len(), 3, "{refused:#?}");
        assert!(refused["c-rule.toml"].contains("is not the file's name \"c-rule\""), "{refused:#?}");
        assert!(refused["d-rule.toml"].contains("also the target of rule \"main-1\" of the config file"), "{refused:#?}");
        assert!(refused["e-rule.toml"].contains("b-rule.toml"), "{refused:#?}");
        assert!(read_rule_folder(&dir.join("absent"), &[], &plugins).rules.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rule_written_from_json_reads_back_as_the_same_rule() {
        let dir = scratch("roundtrip");
        let body = json!({"id": "r-json", "description": null, "source": {"topic": "T", "group": "G"},
                          "target": {"parent_topic": "p", "allow_topics": ["x/#"]}, "limits": {"memory_mb": 8}});
        write_atomically(&rule_file(&dir, "r-json"), rule_file_text(&body).unwrap().as_bytes()).unwrap();
        let plugins = PluginLookup { dir: Path::new("/p"), exists: &any_plugin };
        let folder = read_rule_folder(&dir, &[], &plugins);
        assert!(folder.refused.is_empty(), "{:?}", folder.refused);
        let direct = super::super::validate_rule(without_nulls(body), &[], &plugins).unwrap();
        assert_eq!(folder.rules, [direct]);
        let fields = read_rule_file_json(&rule_file(&dir, "r-json")).unwrap();
        assert_eq!(fields["limits"]["memory_mb"], 8);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_state_file_keeps_enabled_states() {
        let dir = scratch("state");
        assert!(read_state(&dir).unwrap().is_empty());
        let states = BTreeMap::from([("main-1".to_string(), false)]);
        write_atomically(&dir.join(STATE_FILE), state_text(&states).as_bytes()).unwrap();
        assert_eq!(read_state(&dir).unwrap(), BTreeMap::from([("main-1".to_string(), false)]));
        std::fs::write(dir.join(STATE_FILE), "{").unwrap();
        assert!(read_state(&dir).unwrap_err().contains("delete it"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
