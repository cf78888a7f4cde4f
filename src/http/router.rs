//! Which route a method and path name, and which methods a route allows.

use hyper::Method;

/// A known route, with its path parameter when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'p> {
    /// `GET /mina/`
    MinaIndex,
    /// `POST /mina/login`
    Login,
    /// `POST /mina/auth`
    Auth,
    /// `POST /mina/logout`
    Logout,
    /// `GET|POST /admin/apps`
    Apps,
    /// `GET|PATCH|DELETE /admin/apps/{id}`
    App(&'p str),
    /// `GET /admin/apps/{id}/sessions`
    AppSessions(&'p str),
    /// `DELETE /admin/sessions/{uuid}`
    Session(&'p str),
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
}

/// Metric label of requests that matched no route.
pub const UNMATCHED_LABEL: &str = "unmatched";

/// Labels of every route, indexed by [`Route::index`], then the unmatched one.
pub const LABELS: [&str; 12] = [
    "/mina/",
    "/mina/login",
    "/mina/auth",
    "/mina/logout",
    "/admin/apps",
    "/admin/apps/{id}",
    "/admin/apps/{id}/sessions",
    "/admin/sessions/{uuid}",
    "/healthz",
    "/readyz",
    "/metrics",
    UNMATCHED_LABEL,
];

/// Index of [`UNMATCHED_LABEL`] in [`LABELS`].
pub const UNMATCHED: usize = 11;

impl<'p> Route<'p> {
    /// The route a path names. A trailing slash is optional, as clients of the
    /// original service sent both forms.
    pub fn of(path: &'p str) -> Option<Route<'p>> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        Some(match trimmed {
            "/mina" => Route::MinaIndex,
            "/mina/login" => Route::Login,
            "/mina/auth" => Route::Auth,
            "/mina/logout" => Route::Logout,
            "/admin/apps" => Route::Apps,
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            _ => {
                if let Some(rest) = trimmed.strip_prefix("/admin/apps/") {
                    match rest.split_once('/') {
                        None if !rest.is_empty() => Route::App(rest),
                        Some((id, "sessions")) if !id.is_empty() => Route::AppSessions(id),
                        _ => return None,
                    }
                } else if let Some(uuid) = trimmed.strip_prefix("/admin/sessions/") {
                    if uuid.is_empty() || uuid.contains('/') {
                        return None;
                    }
                    Route::Session(uuid)
                } else {
                    return None;
                }
            }
        })
    }

    /// Position of this route's label in [`LABELS`].
    pub fn index(&self) -> usize {
        match self {
            Route::MinaIndex => 0,
            Route::Login => 1,
            Route::Auth => 2,
            Route::Logout => 3,
            Route::Apps => 4,
            Route::App(_) => 5,
            Route::AppSessions(_) => 6,
            Route::Session(_) => 7,
            Route::Healthz => 8,
            Route::Readyz => 9,
            Route::Metrics => 10,
        }
    }

    /// The route's template, for metrics and logs.
    pub fn label(&self) -> &'static str {
        LABELS[self.index()]
    }

    /// Whether this route belongs to the admin API (its own error shape).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Route::Apps | Route::App(_) | Route::AppSessions(_) | Route::Session(_)
        )
    }

    /// The methods this route answers, as an `Allow` header value.
    pub fn allow(&self) -> &'static str {
        match self {
            Route::Login | Route::Auth | Route::Logout => "POST",
            Route::Apps => "GET, POST",
            Route::App(_) => "GET, PATCH, DELETE",
            Route::Session(_) => "DELETE",
            Route::MinaIndex
            | Route::AppSessions(_)
            | Route::Healthz
            | Route::Readyz
            | Route::Metrics => "GET, HEAD",
        }
    }

    /// Whether this route answers `method`.
    pub fn allows(&self, method: &Method) -> bool {
        match self {
            Route::Login | Route::Auth | Route::Logout => method == Method::POST,
            Route::Apps => method == Method::GET || method == Method::POST,
            Route::App(_) => {
                method == Method::GET || method == Method::PATCH || method == Method::DELETE
            }
            Route::Session(_) => method == Method::DELETE,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(Route::of("/mina/"), Some(Route::MinaIndex));
        assert_eq!(Route::of("/mina"), Some(Route::MinaIndex));
        assert_eq!(Route::of("/mina/auth"), Some(Route::Auth));
        assert_eq!(Route::of("/mina/auth/"), Some(Route::Auth));
        assert_eq!(Route::of("/admin/apps/7"), Some(Route::App("7")));
        assert_eq!(
            Route::of("/admin/apps/7/sessions"),
            Some(Route::AppSessions("7"))
        );
        assert_eq!(
            Route::of("/admin/sessions/abc"),
            Some(Route::Session("abc"))
        );
        assert_eq!(Route::of("/admin/apps/7/other"), None);
        assert_eq!(Route::of("/admin/apps//sessions"), None);
        assert_eq!(Route::of("/nope"), None);
        assert_eq!(Route::of("/"), None);
    }

    #[test]
    fn methods_and_allow_agree() {
        for r in [
            Route::Auth,
            Route::Apps,
            Route::App("1"),
            Route::Session("u"),
            Route::Healthz,
        ] {
            for m in [
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
                Method::PUT,
            ] {
                let listed = r.allow().split(", ").any(|a| a == m.as_str());
                assert_eq!(r.allows(&m), listed, "{r:?} {m}");
            }
        }
    }

    #[test]
    fn labels_line_up() {
        assert_eq!(Route::AppSessions("x").label(), "/admin/apps/{id}/sessions");
        assert_eq!(LABELS[UNMATCHED], "unmatched");
    }
}
