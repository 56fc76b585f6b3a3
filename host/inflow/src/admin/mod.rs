//! The admin HTTP server: `/healthz`, `/readyz`, `/metrics` (Prometheus text format), the
//! rule lifecycle under `/api/v1` ([`api`]) and the console page at `/` ([`console`]).
//!
//! Up from the first second of `inflow run`, whatever the brokers do. Off loopback every
//! endpoint but `/healthz` and the console's files needs the bearer token of `INFLOW_ADMIN_TOKEN`; the token is
//! compared in constant time and never logged.

mod api;
mod console;
pub mod metrics;
mod process;

use crate::config::{AdminConfig, Secret};
use crate::rule::RuleStatus;
use crate::sink::Sink;
use crate::supervisor::lifecycle::Control;
use crate::supervisor::{Plugins, Rules};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use tracing::info;

/// What the endpoints read and change: the rules, the MQTT connection and the plugin folder.
#[derive(Clone)]
pub struct AdminState {
    pub rules: Rules,
    pub sink: Sink,
    pub control: Control,
    /// The plugin folder, once a rule with a plugin opened it.
    pub plugins: Plugins,
}

struct Shared {
    state: AdminState,
    token: Option<Secret>,
}

/// Binds the admin listener now (so a taken port fails `inflow run` at once) and serves it in
/// the background.
pub async fn start(config: &AdminConfig, state: AdminState) -> anyhow::Result<()> {
    let Some(addr) = config.listen else { return Ok(()) };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("the admin server cannot listen on {addr}: {e}; choose a free port in [admin] listen"))?;
    let app = router(state, config.token.clone(), config.max_body_bytes);
    info!(listen = %listener.local_addr()?, token = config.token.is_some(), "admin server listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the admin server stopped");
        }
    });
    Ok(())
}

fn router(state: AdminState, token: Option<Secret>, max_body_bytes: usize) -> Router {
    let shared = Arc::new(Shared { state, token });
    let guarded = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api::routes())
        .route_layer(middleware::from_fn_with_state(shared.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(console::routes())
        .merge(guarded)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(shared)
}

async fn require_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(token) = &shared.token else { return next.run(request).await };
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|given| constant_time_eq(given.as_bytes(), token.expose().as_bytes())) {
        return next.run(request).await;
    }
    let body = Json(json!({"error": "missing or wrong bearer token", "fix": "send the header `Authorization: Bearer <INFLOW_ADMIN_TOKEN>`"}));
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why inflow is not ready, one entry per cause; empty when it is.
pub fn unready_reasons(state: &AdminState) -> Vec<serde_json::Value> {
    let mut reasons = Vec::new();
    if !state.sink.is_connected() {
        let reason = match state.sink.last_error() {
            Some(why) => format!("not connected to the MQTT broker: {why}"),
            None => "not connected to the MQTT broker".to_string(),
        };
        reasons.push(json!({"component": "mqtt", "reason": reason}));
    }
    for rule in state.rules.snapshot() {
        let why = match &rule.status {
            RuleStatus::Running | RuleStatus::WaitingForPlugin | RuleStatus::Disabled => continue,
            RuleStatus::Starting => "starting".to_string(),
            RuleStatus::Paused(why) => format!("paused: {why}"),
            RuleStatus::Failed(why) => format!("failing: {why}"),
            RuleStatus::Stopped => "stopped".to_string(),
        };
        reasons.push(json!({"component": "rule", "rule": rule.id, "reason": why}));
    }
    reasons
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let reasons = unready_reasons(&shared.state);
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "reasons": reasons}))).into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let format = metrics::Format::accepted(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match metrics::render(&shared.state, format) {
        Ok(text) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the metrics: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
