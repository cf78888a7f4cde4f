//! The console: a page for operators, served from the binary (no build
//! step, nothing from another origin). It works only through the admin API,
//! with the token the operator types; this module serves its three files
//! with headers that keep the page from running anything else.

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};

use crate::http::response::{Reply, json};

/// One of the console's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `index.html`.
    Page,
    /// `app.js`.
    Script,
    /// `app.css`.
    Style,
}

const PAGE: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/app.js");
const STYLE: &str = include_str!("../../console/app.css");

/// Scripts and styles from the page's own origin only (no inline script,
/// no `eval`), requests only to it, never framed, no referrer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The asset with its headers.
pub fn serve(asset: Asset) -> Reply {
    let (body, kind) = match asset {
        Asset::Page => (PAGE, "text/html; charset=utf-8"),
        Asset::Script => (SCRIPT, "text/javascript; charset=utf-8"),
        Asset::Style => (STYLE, "text/css; charset=utf-8"),
    };
    let mut r = json(StatusCode::OK, Bytes::from_static(body.as_bytes()));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    // Always the files of the running version.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_runs_no_inline_script_and_loads_only_its_own_files() {
        assert!(!PAGE.contains("<script>"), "no inline script");
        assert!(!PAGE.contains("onclick") && !PAGE.contains("style="));
        assert!(PAGE.contains(r#"src="/console/app.js""#));
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("eval("));
        assert!(SCRIPT.contains("sessionStorage"));
    }
}
