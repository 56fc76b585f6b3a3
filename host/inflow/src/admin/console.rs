//! The console: a page of plain HTML, CSS and JS on top of `/api/v1`, embedded in the binary
//! (nothing from the internet, no build step). The page itself needs no token: it asks for one
//! when the API answers 401.

use axum::http::header;
use axum::routing::{get, MethodRouter};
use axum::Router;

pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", asset("text/html; charset=utf-8", include_str!("console/index.html")))
        .route("/console.css", asset("text/css; charset=utf-8", include_str!("console/console.css")))
        .route("/console.js", asset("text/javascript; charset=utf-8", include_str!("console/console.js")))
}

/// `no-cache`: a browser revalidates, so a new inflow binary is never shown an old page. The
/// policy keeps the page to its own files and out of other sites' frames (its buttons change
/// rules).
fn asset<S: Clone + Send + Sync + 'static>(content_type: &'static str, body: &'static str) -> MethodRouter<S> {
    get(move || async move {
        let headers = [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; frame-ancestors 'none'"),
        ];
        (headers, body)
    })
}
