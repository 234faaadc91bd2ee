//! The dashboard: one HTML page, three scripts and a stylesheet, embedded in the binary (no CDN,
//! no external request). A `#token=...` fragment gives the page its API token (kept in the tab's
//! `sessionStorage` and taken out of the address bar); only without one does it ask. It reads
//! `/v1/*` every 2 s and writes through the same API as any other client: backend overrides, the
//! pool form (with field errors at their inputs, a dry-run preview, and the raw JSON under
//! "Advanced"), members, history and rollback. `charts.js` draws `/v1/series` (15 minutes of
//! connections, rates, health and HA state) as inline SVG.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const CHARTS_JS: &str = include_str!("../assets/charts.js");
const POOL_JS: &str = include_str!("../assets/pool.js");

/// Security headers for every dashboard response: nothing from elsewhere, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

/// `GET /assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => page("text/javascript; charset=utf-8", APP_JS),
        "charts.js" => page("text/javascript; charset=utf-8", CHARTS_JS),
        "pool.js" => page("text/javascript; charset=utf-8", POOL_JS),
        "app.css" => page("text/css; charset=utf-8", APP_CSS),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every script and stylesheet the page names is served, and nothing else is.
    #[tokio::test]
    async fn every_asset_the_page_names_is_served() {
        let named: Vec<&str> = INDEX
            .split("\"/assets/")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        assert_eq!(named, ["app.css", "app.js", "charts.js", "pool.js"]);
        for file in named {
            let r = asset(Path(file.to_owned())).await;
            assert_eq!(r.status(), StatusCode::OK, "{file}");
        }
        let r = asset(Path("index.html".to_owned())).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    /// Server text never becomes markup, and the page asks nothing of another origin (the SVG
    /// namespace is a name, not a request).
    #[test]
    fn the_scripts_write_text_only_and_stay_on_this_origin() {
        for (name, text) in [
            ("index.html", INDEX),
            ("app.js", APP_JS),
            ("charts.js", CHARTS_JS),
            ("pool.js", POOL_JS),
            ("app.css", APP_CSS),
        ] {
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(bad), "{name} uses {bad}");
            }
            let elsewhere = text
                .replace("http://www.w3.org/2000/svg", "")
                .contains("://");
            assert!(!elsewhere, "{name} names another origin");
        }
    }
}
