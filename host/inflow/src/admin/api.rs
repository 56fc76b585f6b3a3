//! `/api/v1`: the rule lifecycle as JSON. Each change goes through [`Control`], which checks it
//! with the config loader's own code, stores it in the rules folder and applies it.

use super::{AdminState, Shared};
use crate::config::{rule_json, RuleConfig};
use crate::mapping::ErrorKind;
use crate::sink::QoS;
use crate::rule::RuleCounters;
use crate::supervisor::lifecycle::{ChangeError, Origin, RuleEntry};
use crate::supervisor::RuleReport;
use inflow_plugin::PluginReport;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/rules", get(list))
        .route("/api/v1/rules/validate", post(validate))
        .route("/api/v1/rules/{id}", get(show).put(put).delete(delete))
        .route("/api/v1/rules/{id}/status", get(status))
        .route("/api/v1/rules/{id}/enable", post(enable))
        .route("/api/v1/rules/{id}/disable", post(disable))
        .route("/api/v1/plugins", get(plugins))
}

/// Each plugin of the folder: the version serving, when and how it loaded, the rules naming
/// it, and its latest refusal. Empty until a rule with a plugin opened the folder.
async fn plugins(State(shared): State<Arc<Shared>>) -> Response {
    let state = &shared.state;
    let entries = state.control.list().await;
    let reports = state.plugins.get().map(|dir| dir.report()).unwrap_or_default();
    let plugins: Vec<Value> = reports
        .iter()
        .map(|p| {
            let rules: Vec<&str> = entries.iter().filter(|e| e.config.plugin.as_ref().is_some_and(|r| r.name == p.name)).map(|e| e.config.id.as_str()).collect();
            json!({
                "name": p.name,
                "version": p.version,
                "loaded_at": p.loaded_at,
                "from_cache": p.from_cache,
                "rules": rules,
                "last_refusal": p.last_refusal.as_ref().map(|r| json!({ "at": r.at, "reason": r.reason })),
            })
        })
        .collect();
    Json(json!({ "plugins": plugins })).into_response()
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let state = &shared.state;
    let reports = state.rules.snapshot();
    let plugins = state.plugins.get().map(|dir| dir.report()).unwrap_or_default();
    let entries = state.control.list().await;
    let rules: Vec<Summary> = entries.iter().map(|entry| summary(entry, find(&reports, &entry.config.id), &plugins)).collect();
    // Serialized from borrowed views, not a `Value` tree: with 10 000 rules that tree took
    // ~80 MiB for each poll of the console. Into a buffer sized for ~0.5 KB a rule: grown by
    // doubling, the 5 MB answer for 10 000 rules would pass through 4 and 8 MB buffers at once.
    let mut body = Vec::with_capacity(512 * rules.len() + 64);
    match serde_json::to_writer(&mut body, &RuleList { rules }) {
        Ok(()) => ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("the rule list could not be serialized: {e}")).into_response(),
    }
}

async fn show(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = &shared.state;
    match state.control.get(&id).await {
        Some(entry) => Json(json!({
            "id": id,
            "origin": entry.origin,
            "file": entry.file,
            "config": rule_json(&entry.config),
            "status": rule_status(state, &entry),
        }))
        .into_response(),
        None => change_error(ChangeError::NotFound(format!("no rule {id:?}"))),
    }
}

async fn status(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = &shared.state;
    match state.control.get(&id).await {
        Some(entry) => Json(rule_status(state, &entry)).into_response(),
        None => change_error(ChangeError::NotFound(format!("no rule {id:?}"))),
    }
}

async fn put(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    match shared.state.control.put(&id, body).await {
        Ok((rule, created)) => {
            let code = if created { StatusCode::CREATED } else { StatusCode::OK };
            (code, Json(json!({ "created": created, "rule": rule_json(&rule) }))).into_response()
        }
        Err(e) => change_error(e),
    }
}

async fn delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.state.control.delete(&id).await {
        Ok(()) => Json(json!({ "deleted": id })).into_response(),
        Err(e) => change_error(e),
    }
}

async fn enable(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    set_enabled(&shared.state, &id, true).await
}

async fn disable(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    set_enabled(&shared.state, &id, false).await
}

async fn set_enabled(state: &AdminState, id: &str, enabled: bool) -> Response {
    match state.control.set_enabled(id, enabled).await {
        Ok(rule) => Json(json!({ "rule": rule_json(&rule) })).into_response(),
        Err(e) => change_error(e),
    }
}

async fn validate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    match shared.state.control.validate(body).await {
        Ok(rule) => Json(json!({ "valid": true, "rule": rule_json(&rule) })).into_response(),
        Err(e) => change_error(e),
    }
}

/// The body as JSON, or a 400 that says where it stops being JSON.
fn parse_body(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        let problem = format!("the body is not valid JSON: {e}");
        Box::new(error_response(StatusCode::BAD_REQUEST, &problem, "send a JSON object (Content-Type: application/json); the place above is line and column of the body"))
    })
}

pub(super) fn error_response(code: StatusCode, problem: &str, fix: &str) -> Response {
    (code, Json(json!({ "error": problem, "fix": fix }))).into_response()
}

fn change_error(e: ChangeError) -> Response {
    match e {
        ChangeError::Invalid(errors) => (StatusCode::BAD_REQUEST, Json(json!({ "error": "the rule does not validate", "errors": errors }))).into_response(),
        ChangeError::NotFound(problem) => error_response(StatusCode::NOT_FOUND, &problem, "list the rules with GET /api/v1/rules"),
        ChangeError::Conflict { problem, fix } => error_response(StatusCode::CONFLICT, &problem, &fix),
        ChangeError::Failed { problem, fix } => error_response(StatusCode::INTERNAL_SERVER_ERROR, &problem, &fix),
    }
}

fn find<'a>(reports: &'a [RuleReport], id: &str) -> Option<&'a RuleReport> {
    reports.binary_search_by(|r| r.id.as_str().cmp(id)).ok().map(|i| &reports[i])
}

/// `GET /api/v1/rules`.
#[derive(Serialize)]
struct RuleList<'a> {
    rules: Vec<Summary<'a>>,
}

/// A rule in the list: what an operator scans for.
#[derive(Serialize)]
struct Summary<'a> {
    id: &'a str,
    description: &'a str,
    enabled: bool,
    origin: Origin,
    state: &'static str,
    error: Option<&'a str>,
    source: SourceView<'a>,
    parent_topic: &'a str,
    mapping: MappingView<'a>,
    lag: Option<u64>,
    counters: Option<Counters<'a>>,
}

#[derive(Serialize)]
struct SourceView<'a> {
    topic: &'a str,
    expression: &'a str,
    group: &'a str,
}

/// The built-in mapping, or the plugin with the version serving it (none while it waits).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum MappingView<'a> {
    BuiltIn,
    Plugin { plugin: &'a str, version: Option<&'a str> },
}

fn summary<'a>(entry: &'a RuleEntry, report: Option<&'a RuleReport>, plugins: &'a [PluginReport]) -> Summary<'a> {
    let rule = &entry.config;
    Summary {
        id: &rule.id,
        description: &rule.description,
        enabled: rule.enabled,
        origin: entry.origin,
        state: report.map_or("stopped", |r| r.status.name()),
        error: report.and_then(|r| r.status.reason()),
        source: SourceView { topic: &rule.source.topic, expression: &rule.source.expression, group: &rule.source.group },
        parent_topic: &rule.parent_topic,
        mapping: mapping(rule, plugins),
        lag: report.map(|r| r.counters.queues().iter().map(|q| q.lag).sum::<u64>()),
        counters: report.map(counters),
    }
}

fn mapping<'a>(rule: &'a RuleConfig, plugins: &'a [PluginReport]) -> MappingView<'a> {
    match &rule.plugin {
        None => MappingView::BuiltIn,
        Some(p) => {
            let version = plugins.iter().find(|r| r.name == p.name).and_then(|r| r.version.as_deref());
            MappingView::Plugin { plugin: &p.name, version }
        }
    }
}

/// A rule's state, its last error, where each of its queues stands, and its counters.
fn rule_status(state: &AdminState, entry: &RuleEntry) -> Value {
    let report = state.rules.get(&entry.config.id);
    let report = report.as_ref();
    json!({
        "id": entry.config.id,
        "enabled": entry.config.enabled,
        "state": report.map_or("stopped", |r| r.status.name()),
        "error": report.and_then(|r| r.status.reason()),
        "queues": report.map(|r| r.counters.queues()).unwrap_or_default(),
        "counters": report.map(counters),
    })
}

/// A rule's counters since it started.
#[derive(Serialize)]
struct Counters<'a> {
    consumed: u64,
    forwarded: u64,
    in_flight: u64,
    skipped: u64,
    dead_lettered: u64,
    publishes: Publishes,
    errors: Errors<'a>,
    last_forward_unix_ms: Option<u64>,
}

#[derive(Serialize)]
struct Publishes {
    qos0: u64,
    qos1: u64,
    qos2: u64,
}

/// Failed messages by kind: every kind, zero included.
struct Errors<'a>(&'a RuleCounters);

impl Serialize for Errors<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(ErrorKind::ALL.iter().map(|k| (k.as_str(), self.0.errors(*k))))
    }
}

fn counters(report: &RuleReport) -> Counters<'_> {
    let c = &report.counters;
    Counters {
        consumed: c.messages.load(Relaxed),
        forwarded: c.forwarded.load(Relaxed),
        in_flight: c.in_flight.load(Relaxed),
        skipped: c.skipped.load(Relaxed),
        dead_lettered: c.dead_lettered.load(Relaxed),
        publishes: Publishes { qos0: c.publishes(QoS::AtMostOnce), qos1: c.publishes(QoS::AtLeastOnce), qos2: c.publishes(QoS::ExactlyOnce) },
        errors: Errors(c),
        last_forward_unix_ms: c.last_forward().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as u64),
    }
}
