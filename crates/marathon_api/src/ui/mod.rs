//! The Marathon web UI (issue 7): three static assets served under `/ui/`.
//!
//! What: `index.html`, `app.js` and `style.css` from `crates/marathon_api/ui/`, embedded with
//! `include_str!` and served at `/ui/` (also `/ui/index.html`), `/ui/app.js`, `/ui/style.css`;
//! `/ui` answers 302 to `/ui/` (as `GET /` does, marathon-api.md §1). The page is plain HTML, CSS
//! and vanilla JS with hash routing (`#/apps`, `#/apps/<id>`, `#/deployments`, `#/new`).
//!
//! Why this shape: one binary and no build step; nothing is fetched from elsewhere (the
//! `Content-Security-Policy` says so). The page talks only to the REST API v2 it shows, through
//! relative URLs (`../v2/apps`), so it works on a standby too: the leader gate forwards `/ui/*`
//! and `/v2/*` alike (§8.3). The routes sit behind that gate like every other path.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The page shell: header, navigation, the view container.
pub const INDEX_HTML: &str = include_str!("../../ui/index.html");
/// Routing, polling, views and forms.
pub const APP_JS: &str = include_str!("../../ui/app.js");
/// Layout, status colours, focus styles.
pub const STYLE_CSS: &str = include_str!("../../ui/style.css");

pub const HTML_TYPE: &str = "text/html; charset=utf-8";
pub const JS_TYPE: &str = "text/javascript; charset=utf-8";
pub const CSS_TYPE: &str = "text/css; charset=utf-8";
/// Same-origin only: scripts, styles and API calls come from this server; no inline code.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The UI routes, to be merged into the API router (inside the leader gate).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(redirect))
        .route("/ui/", get(index))
        .route("/ui/index.html", get(index))
        .route("/ui/app.js", get(script))
        .route("/ui/style.css", get(style))
}

/// `GET /ui` → 302 `/ui/`, so the page's relative URLs resolve under `/ui/`.
async fn redirect() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/ui/")]).into_response()
}

async fn index() -> Response {
    asset(HTML_TYPE, INDEX_HTML)
}

async fn script() -> Response {
    asset(JS_TYPE, APP_JS)
}

async fn style() -> Response {
    asset(CSS_TYPE, STYLE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r
}
