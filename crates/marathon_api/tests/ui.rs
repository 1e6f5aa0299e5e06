//! The embedded web UI (issue 7): `/ui/*` serves the three assets with their content types,
//! `/ui` redirects, the page carries the hooks the browser test relies on, and it calls the API
//! only through relative URLs, so a standby serves it by proxying like any other path (§8.3).

mod common;
use common::*;
use marathon_api::service::{LeaderState, ServiceView};

async fn get(h: &Harness, path: &str) -> (u16, String, String) {
    let r = h.http.get(h.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn assets_are_served_with_their_content_types() {
    let h = leading(sample_view()).await;
    for (path, ct, marker) in [
        ("/ui/", "text/html; charset=utf-8", "<script src=\"app.js\""),
        (
            "/ui/index.html",
            "text/html; charset=utf-8",
            "id=\"create-app\"",
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "'use strict'",
        ),
        ("/ui/style.css", "text/css; charset=utf-8", ":focus-visible"),
    ] {
        let (s, got, body) = get(&h, path).await;
        assert_eq!((s, got.as_str()), (200, ct), "{path}");
        assert!(body.contains(marker), "{path} lacks {marker}");
    }
    let r = h.http.get(h.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    let (s, _, _) = get(&h, "/ui/nothing.js").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn ui_without_slash_and_root_redirect_to_ui() {
    let h = leading(sample_view()).await;
    for path in ["/ui", "/"] {
        let r = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302, "{path}");
        assert_eq!(r.headers()["location"], "/ui/", "{path}");
    }
}

#[tokio::test]
async fn page_uses_relative_api_urls_and_no_external_assets() {
    let html = marathon_api::ui::INDEX_HTML;
    let js = marathon_api::ui::APP_JS;
    assert!(js.contains("const API = '../v2/'"));
    for asset in [html, js, marathon_api::ui::STYLE_CSS] {
        assert!(!asset.contains("'/v2/"), "absolute API path");
        assert!(!asset.contains("\"/v2/"), "absolute API path");
        assert!(!asset.contains("//cdn"), "CDN reference");
        assert!(!asset.contains("innerHTML"), "markup injection");
    }
    // The ids and test hooks a browser test relies on.
    for hook in [
        "create-app",
        "'app-' + f.key",
        "'json-mode'",
        "'app-json'",
        "'submit-app'",
        "'data-error-for'",
        "'app-row'",
        "'app-status'",
        "'app-instances'",
        "'task-row'",
        "'scale-app'",
        "'scale-input'",
        "'scale-confirm'",
        "'restart-app'",
        "'suspend-app'",
        "'destroy-app'",
        "'destroy-confirm'",
        "'versions'",
        "'deployment-row'",
    ] {
        assert!(html.contains(hook) || js.contains(hook), "missing {hook}");
    }
    for key in ["id", "cmd", "cpus", "mem", "disk", "instances"] {
        assert!(js.contains(&format!("key: '{key}'")), "no form field {key}");
    }
}

#[tokio::test]
async fn a_standby_serves_the_ui_by_proxying() {
    let leader = leading(sample_view()).await;
    let leader_addr = leader.addr.clone();
    let standby = start(ServiceView::default(), |_| {
        LeaderState::Following(leader_addr.clone())
    })
    .await;
    let (s, ct, body) = get(&standby, "/ui/app.js").await;
    assert_eq!((s, ct.as_str()), (200, "text/javascript; charset=utf-8"));
    assert_eq!(body, marathon_api::ui::APP_JS);
}
