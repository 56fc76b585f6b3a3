//! `inflow rules ...` and `inflow status`: the admin API from a shell. A readable table by
//! default, `--json` for scripts. Exit codes: 0 done (for `status`: ready), 1 inflow refused
//! the request, with its reasons (for `status`: not ready), 3 no inflow answers at the address
//! or it refused the token.

use crate::config::env::ADMIN_TOKEN;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where inflow's admin API is.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The admin API of a running inflow (its `[admin] listen`).
    #[arg(long, env = "INFLOW_ADMIN", default_value = "http://127.0.0.1:9464", global = true)]
    pub admin: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Every rule: state, source, parent topic, mapping, counters.
    List,
    /// One rule's config and state.
    Get { id: String },
    /// Create or update the rule of a file: a rule table as in the rules folder (TOML) or JSON.
    Apply {
        #[arg(short, long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a rule of the rules folder: it drains, commits and stops.
    Delete { id: String },
    /// Enable a rule: it resumes from its committed offsets.
    Enable { id: String },
    /// Disable a rule: it drains and commits, and holds its offsets.
    Disable { id: String },
    /// A rule's state, last error and counters.
    Status { id: String },
}

const REFUSED: i32 = 1;
const UNREACHABLE: i32 = 3;

pub fn rules(admin: AdminArgs, command: RulesCommand) -> i32 {
    let client = Client::new(&admin.admin);
    let result = match command {
        RulesCommand::List => client.call("GET", "/api/v1/rules", None).map(|rules| print(&admin, &rules, rule_table)),
        RulesCommand::Get { id } => client.call("GET", &format!("/api/v1/rules/{id}"), None).map(|rule| print(&admin, &rule, rule_details)),
        RulesCommand::Apply { file } => match read_rule(&file) {
            Ok((id, body)) => client.call("PUT", &format!("/api/v1/rules/{id}"), Some(&body)).map(|answer| {
                let done = if answer["created"] == true { "created" } else { "updated" };
                print(&admin, &answer, |_| format!("rule {id:?} {done}\n"))
            }),
            Err(problem) => {
                eprintln!("inflow rules apply: {}: {problem}", file.display());
                return REFUSED;
            }
        },
        RulesCommand::Delete { id } => client.call("DELETE", &format!("/api/v1/rules/{id}"), None).map(|a| print(&admin, &a, |_| format!("rule {id:?} deleted\n"))),
        RulesCommand::Enable { id } => client.call("POST", &format!("/api/v1/rules/{id}/enable"), None).map(|a| print(&admin, &a, |_| format!("rule {id:?} enabled\n"))),
        RulesCommand::Disable { id } => client.call("POST", &format!("/api/v1/rules/{id}/disable"), None).map(|a| print(&admin, &a, |_| format!("rule {id:?} disabled\n"))),
        RulesCommand::Status { id } => client.call("GET", &format!("/api/v1/rules/{id}/status"), None).map(|s| print(&admin, &s, status_lines)),
    };
    finish(result)
}

/// `inflow status`: readiness, with its reasons, and the rule table.
pub fn status(admin: AdminArgs) -> i32 {
    let client = Client::new(&admin.admin);
    let result = client.call_any("GET", "/readyz").and_then(|(ready_code, ready)| {
        let rules = client.call("GET", "/api/v1/rules", None)?;
        if admin.json {
            println!("{}", serde_json::json!({ "ready": ready, "rules": rules["rules"] }));
        } else {
            match ready_code {
                200 => println!("inflow at {} is ready", client.base),
                _ => {
                    println!("inflow at {} is NOT ready:", client.base);
                    for reason in ready["reasons"].as_array().into_iter().flatten() {
                        let who = reason["rule"].as_str().map_or_else(|| reason["component"].as_str().unwrap_or("?").to_string(), |r| format!("rule {r}"));
                        println!("  {who}: {}", reason["reason"].as_str().unwrap_or_default());
                    }
                }
            }
            print!("{}", rule_table(&rules));
        }
        Ok(ready_code == 200)
    });
    match result {
        Ok(true) => 0,
        Ok(false) => REFUSED,
        Err(failure) => finish(Err(failure)),
    }
}

fn finish(result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(Failure { code, message }) => {
            eprint!("{message}");
            code
        }
    }
}

fn print(admin: &AdminArgs, answer: &Value, table: impl Fn(&Value) -> String) {
    if admin.json {
        println!("{answer}");
    } else {
        print!("{}", table(answer));
    }
}

/// Why a command failed, and its exit code.
struct Failure {
    code: i32,
    message: String,
}

struct Client {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    fn new(base: &str) -> Client {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into();
        let token = std::env::var(ADMIN_TOKEN).ok().filter(|t| !t.is_empty());
        Client { base: base.trim_end_matches('/').to_string(), agent, token }
    }

    /// The answer of a request inflow accepted (2xx); a refusal or no answer is a [`Failure`].
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let (code, answer) = self.request(method, path, body)?;
        if (200..300).contains(&code) {
            Ok(answer)
        } else {
            Err(Failure { code: REFUSED, message: refusal(code, &answer) })
        }
    }

    /// The status and answer of any request inflow answered.
    fn call_any(&self, method: &str, path: &str) -> Result<(u16, Value), Failure> {
        self.request(method, path, None)
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), Failure> {
        let url = format!("{}{path}", self.base);
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}")).unwrap_or_default();
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &bearer).call(),
            ("DELETE", _) => self.agent.delete(&url).header("Authorization", &bearer).call(),
            ("PUT", Some(body)) => self.agent.put(&url).header("Authorization", &bearer).send_json(body),
            (_, Some(body)) => self.agent.post(&url).header("Authorization", &bearer).send_json(body),
            (_, None) => self.agent.post(&url).header("Authorization", &bearer).send_empty(),
        };
        let mut response = sent.map_err(|e| Failure {
            code: UNREACHABLE,
            message: format!(
                "no inflow answers at {}: {e}\n  fix: start `inflow run` with [admin] listen at that address, or point --admin (or INFLOW_ADMIN) at it\n",
                self.base
            ),
        })?;
        let code = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if code == 401 {
            return Err(Failure {
                code: UNREACHABLE,
                message: format!("inflow at {} refused the token (401)\n  fix: set {ADMIN_TOKEN} to the token inflow was started with\n", self.base),
            });
        }
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((code, answer))
    }
}

/// A refusal as the API explains it: the problem and fix, or every mistake of a rule.
fn refusal(code: u16, answer: &Value) -> String {
    let mut out = format!("inflow refused ({code}): {}\n", answer["error"].as_str().unwrap_or(&answer.to_string()));
    for e in answer["errors"].as_array().into_iter().flatten() {
        out += &format!("  {}: {}\n      fix: {}\n", e["place"].as_str().unwrap_or_default(), e["problem"].as_str().unwrap_or_default(), e["fix"].as_str().unwrap_or_default());
    }
    if let Some(fix) = answer["fix"].as_str() {
        out += &format!("  fix: {fix}\n");
    }
    out
}

/// A rule file as the API's body, and its id (from the file, else from the file's name).
fn read_rule(file: &std::path::Path) -> Result<(String, Value), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read the file: {e}"))?;
    let body: Value = if file.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?
    } else {
        let table: toml::Table = toml::from_str(&text).map_err(|e| format!("not valid TOML: {e}"))?;
        serde_json::to_value(table).map_err(|e| e.to_string())?
    };
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let id = body["id"].as_str().unwrap_or(stem).to_string();
    if id.is_empty() {
        return Err("the rule has no id; add id = \"...\"".into());
    }
    Ok((id, body))
}

fn rule_table(answer: &Value) -> String {
    let rows: Vec<[String; 7]> = answer["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mapping = match r["mapping"]["plugin"].as_str() {
                Some(p) => format!("plugin {p}"),
                None => "built-in".into(),
            };
            let errors: u64 = r["counters"]["errors"].as_object().map_or(0, |e| e.values().filter_map(Value::as_u64).sum());
            [
                text(&r["id"]),
                shortened(state(r), 48),
                format!("{} ({})", text(&r["source"]["topic"]), text(&r["source"]["group"])),
                text(&r["parent_topic"]),
                mapping,
                r["counters"]["forwarded"].as_u64().unwrap_or(0).to_string(),
                errors.to_string(),
            ]
        })
        .collect();
    table(["ID", "STATE", "SOURCE (GROUP)", "PARENT", "MAPPING", "FORWARDED", "ERRORS"], &rows)
}

fn rule_details(answer: &Value) -> String {
    let mut out = status_lines(&answer["status"]);
    out += &format!("origin:        {} ({})\nconfig:\n", text(&answer["origin"]), text(&answer["file"]));
    let config = serde_json::from_value::<toml::Table>(crate::config::rule_files::without_nulls(answer["config"].clone()));
    match config.map(|c| toml::to_string(&c)) {
        Ok(Ok(toml)) => toml.lines().for_each(|l| out += &format!("  {l}\n")),
        _ => out += &format!("  {}\n", answer["config"]),
    }
    out
}

fn status_lines(status: &Value) -> String {
    let c = &status["counters"];
    let mut out = format!("rule:          {}\nstate:         {}\n", text(&status["id"]), state(status));
    for (name, key) in [("consumed", "consumed"), ("forwarded", "forwarded"), ("in flight", "in_flight"), ("skipped", "skipped"), ("dead-lettered", "dead_lettered")] {
        out += &format!("{:<15}{}\n", format!("{name}:"), c[key].as_u64().unwrap_or(0));
    }
    for (kind, n) in c["errors"].as_object().into_iter().flatten().filter(|(_, n)| n.as_u64() > Some(0)) {
        out += &format!("errors:        {kind} {n}\n");
    }
    let queues: Vec<[String; 6]> = status["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| [text(&q["topic"]), format!("{}#{}", text(&q["broker"]), q["queue_id"]), q["committed_offset"].to_string(), q["max_offset"].to_string(), q["lag"].to_string(), q["in_flight"].to_string()])
        .collect();
    if !queues.is_empty() {
        out += &table(["TOPIC", "QUEUE", "COMMITTED", "MAX", "LAG", "IN FLIGHT"], &queues);
    }
    out
}

/// The state, with the reason of a paused or failing rule.
fn state(rule: &Value) -> String {
    match rule["error"].as_str() {
        Some(why) => format!("{}: {why}", text(&rule["state"])),
        None => text(&rule["state"]),
    }
}

/// `s` cut to `max` characters, for a table cell (`inflow rules status ID` shows it whole).
fn shortened(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    s.chars().take(max - 1).chain(['…']).collect()
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| if v.is_null() { String::new() } else { v.to_string() }, str::to_string)
}

/// Left-aligned columns as wide as their widest cell.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string() + "\n";
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refusal_lists_every_mistake_with_its_fix() {
        let answer = json!({"error": "the rule does not validate", "errors": [
            {"place": "rule \"x\" id", "problem": "too short", "fix": "use 3 to 64"},
            {"place": "rule \"x\" target.parent_topic", "problem": "owned by rule \"a\"", "fix": "choose another"}]});
        let text = refusal(400, &answer);
        assert!(text.starts_with("inflow refused (400): the rule does not validate\n"), "{text}");
        assert!(text.contains("rule \"x\" id: too short\n      fix: use 3 to 64\n") && text.contains("owned by rule \"a\""), "{text}");
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = [["a-long-id".to_string(), "running".to_string()], ["b".to_string(), "failing: no route".to_string()]];
        assert_eq!(table(["ID", "STATE"], &rows), "ID         STATE\na-long-id  running\nb          failing: no route\n");
    }
}
