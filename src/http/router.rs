//! The route table: a request's method and path parsed once into an
//! [`Endpoint`]. Routes are path templates ([`Route`], whose labels the
//! metrics and logs use); which methods a route answers is the one match in
//! [`Endpoint::parse`], from which `Allow` is derived; whether a route
//! speaks the admin error shape follows from its template.

use std::sync::OnceLock;

use hyper::Method;
use hyper::header::HeaderValue;

crate::labels::labelled! {
    /// A route: a path template, `{…}` standing for one path segment.
    pub enum Route {
        /// The mini-program API's index.
        MinaIndex => "/mina/",
        /// Login with a `wx.login()` code.
        Login => "/mina/login",
        /// Check a session.
        Auth => "/mina/auth",
        /// End a session.
        Logout => "/mina/logout",
        /// Decrypt data fetched after login.
        Decrypt => "/mina/decrypt",
        /// The user's phone number.
        Phone => "/mina/phone",
        /// The original wafer protocol (also without the slash).
        Original => "/mina_auth/",
        /// Liveness.
        Healthz => "/healthz",
        /// Readiness.
        Readyz => "/readyz",
        /// Prometheus metrics.
        Metrics => "/metrics",
        /// The console's page.
        Console => "/console/",
        /// The console's script.
        ConsoleScript => "/console/app.js",
        /// The console's style sheet.
        ConsoleStyle => "/console/app.css",
        /// The apps.
        Apps => "/admin/apps",
        /// One app.
        App => "/admin/apps/{id}",
        /// An app's sessions.
        AppSessions => "/admin/apps/{id}/sessions",
        /// One session.
        Session => "/admin/sessions/{uuid}",
        /// One user's session in an app.
        User => "/admin/apps/{id}/users/{open_id}",
        /// Whether a user's stored session key is current.
        UserKey => "/admin/apps/{id}/users/{open_id}/session_key",
        /// An app's shared WeChat access token.
        AccessToken => "/admin/apps/{id}/access_token",
        /// The audit trail of admin actions.
        Audit => "/admin/audit",
        /// Any path no route matches (a metrics label, never dispatched).
        Unmatched => "unmatched",
    }
}

/// What a request asks for: a route and a method, parsed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'p> {
    /// `GET /mina/`
    MinaIndex,
    /// `POST /mina/login`
    Login,
    /// `POST /mina/auth`
    Auth,
    /// `GET /mina/auth`: forward auth for gateways, credentials in headers
    ForwardAuth,
    /// `POST /mina/logout`
    Logout,
    /// `POST /mina/decrypt`
    Decrypt,
    /// `POST /mina/phone`
    Phone,
    /// `POST /mina_auth/`: the original wafer protocol
    Original,
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// `GET /console/` and its files
    Console(crate::http::console::Asset),
    /// `GET /admin/apps`
    ListApps,
    /// `POST /admin/apps`
    CreateApp,
    /// `GET /admin/apps/{id}`
    GetApp(&'p str),
    /// `PATCH /admin/apps/{id}`
    UpdateApp(&'p str),
    /// `DELETE /admin/apps/{id}`
    DeleteApp(&'p str),
    /// `GET /admin/apps/{id}/sessions`
    ListSessions(&'p str),
    /// `DELETE /admin/sessions/{uuid}`
    RevokeSession(&'p str),
    /// `GET /admin/apps/{id}/users/{open_id}`
    GetUser(&'p str, &'p str),
    /// `DELETE /admin/apps/{id}/users/{open_id}`
    RevokeUser(&'p str, &'p str),
    /// `GET /admin/apps/{id}/users/{open_id}/session_key`
    CheckUserKey(&'p str, &'p str),
    /// `GET /admin/apps/{id}/access_token`
    AccessToken(&'p str),
    /// `GET /admin/audit`
    AuditTrail,
}

/// A route's path parameters, in the order its template names them
/// (empty where it has fewer).
pub type Params<'p> = [&'p str; 2];

/// The methods `Allow` can name, in the order it names them.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
];

impl<'p> Endpoint<'p> {
    /// The route table: what `method` on `route` (with its path parameter
    /// `param`) asks for; `None` when the route does not answer `method`.
    /// `HEAD` is answered wherever `GET` is.
    pub fn parse(method: &Method, route: Route, params: Params<'p>) -> Option<Self> {
        use Endpoint as E;
        use Route as R;
        let get = method == Method::GET || method == Method::HEAD;
        let [param, second] = params;
        Some(match route {
            R::MinaIndex if get => E::MinaIndex,
            R::Login if method == Method::POST => E::Login,
            R::Auth if method == Method::POST => E::Auth,
            R::Auth if get => E::ForwardAuth,
            R::Logout if method == Method::POST => E::Logout,
            R::Decrypt if method == Method::POST => E::Decrypt,
            R::Phone if method == Method::POST => E::Phone,
            R::Original if method == Method::POST => E::Original,
            R::Healthz if get => E::Healthz,
            R::Readyz if get => E::Readyz,
            R::Metrics if get => E::Metrics,
            R::Console if get => E::Console(crate::http::console::Asset::Page),
            R::ConsoleScript if get => E::Console(crate::http::console::Asset::Script),
            R::ConsoleStyle if get => E::Console(crate::http::console::Asset::Style),
            R::Apps if method == Method::GET => E::ListApps,
            R::Apps if method == Method::POST => E::CreateApp,
            R::App if method == Method::GET => E::GetApp(param),
            R::App if method == Method::PATCH => E::UpdateApp(param),
            R::App if method == Method::DELETE => E::DeleteApp(param),
            R::AppSessions if get => E::ListSessions(param),
            R::Session if method == Method::DELETE => E::RevokeSession(param),
            R::User if get => E::GetUser(param, second),
            R::User if method == Method::DELETE => E::RevokeUser(param, second),
            R::UserKey if get => E::CheckUserKey(param, second),
            R::AccessToken if get => E::AccessToken(param),
            R::Audit if get => E::AuditTrail,
            _ => return None,
        })
    }
}

impl Route {
    /// The route `path` names, and its path parameters. A trailing slash
    /// is optional, as clients of the original service sent both forms.
    pub fn of(path: &str) -> (Route, Params<'_>) {
        let path = trim_slash(path);
        for route in Route::ALL {
            if let Some(params) = route.matches(path) {
                return (*route, params);
            }
        }
        (Route::Unmatched, [""; 2])
    }

    fn matches(self, path: &str) -> Option<Params<'_>> {
        if self == Route::Unmatched {
            return None;
        }
        let template = trim_slash(self.label());
        if !template.contains('{') {
            return (template == path).then_some([""; 2]);
        }
        let mut params = [""; 2];
        let mut n = 0;
        let mut segments = path.split('/');
        for want in template.split('/') {
            let got = segments.next()?;
            if want.starts_with('{') {
                if got.is_empty() {
                    return None;
                }
                *params.get_mut(n)? = got;
                n += 1;
            } else if want != got {
                return None;
            }
        }
        segments.next().is_none().then_some(params)
    }

    /// Whether the route belongs to the admin API (its own error shape and
    /// the bearer token).
    pub fn is_admin(self) -> bool {
        self.label().starts_with("/admin/")
    }

    /// The methods this route answers, as an `Allow` header value.
    pub fn allow(self) -> HeaderValue {
        static ALLOW: OnceLock<Vec<HeaderValue>> = OnceLock::new();
        let table = ALLOW.get_or_init(|| {
            Route::ALL
                .iter()
                .map(|r| {
                    let names: Vec<&str> = METHODS
                        .iter()
                        .filter(|m| Endpoint::parse(m, *r, ["x"; 2]).is_some())
                        .map(Method::as_str)
                        .collect();
                    HeaderValue::from_str(&names.join(", ")).unwrap_or(HeaderValue::from_static(""))
                })
                .collect()
        });
        table
            .get(self.index())
            .cloned()
            .unwrap_or(HeaderValue::from_static(""))
    }
}

fn trim_slash(path: &str) -> &str {
    path.strip_suffix('/').unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(Route::of("/mina/"), (Route::MinaIndex, [""; 2]));
        assert_eq!(Route::of("/mina"), (Route::MinaIndex, [""; 2]));
        assert_eq!(Route::of("/mina/auth"), (Route::Auth, [""; 2]));
        assert_eq!(Route::of("/mina/auth/"), (Route::Auth, [""; 2]));
        assert_eq!(Route::of("/mina_auth/"), (Route::Original, [""; 2]));
        assert_eq!(Route::of("/mina_auth"), (Route::Original, [""; 2]));
        assert_eq!(Route::of("/admin/apps/7"), (Route::App, ["7", ""]));
        assert_eq!(Route::of("/admin/apps/7/"), (Route::App, ["7", ""]));
        assert_eq!(
            Route::of("/admin/apps/7/sessions"),
            (Route::AppSessions, ["7", ""])
        );
        assert_eq!(
            Route::of("/admin/sessions/abc"),
            (Route::Session, ["abc", ""])
        );
        assert_eq!(Route::of("/admin/apps/7/other").0, Route::Unmatched);
        assert_eq!(Route::of("/admin/apps//sessions").0, Route::Unmatched);
        assert_eq!(Route::of("/admin/sessions/a/b").0, Route::Unmatched);
        assert_eq!(
            Route::of("/admin/apps/7/users/oAb-9_"),
            (Route::User, ["7", "oAb-9_"])
        );
        assert_eq!(Route::of("/admin/apps/7/users/").0, Route::Unmatched);
        assert_eq!(
            Route::of("/admin/apps/7/users/oAb/session_key"),
            (Route::UserKey, ["7", "oAb"])
        );
        assert_eq!(
            Route::of("/admin/apps/7/access_token"),
            (Route::AccessToken, ["7", ""])
        );
        assert_eq!(Route::of("/mina/phone"), (Route::Phone, [""; 2]));
        assert_eq!(Route::of("/mina/decrypt/"), (Route::Decrypt, [""; 2]));
        assert_eq!(Route::of("/nope").0, Route::Unmatched);
        assert_eq!(Route::of("/").0, Route::Unmatched);
        assert_eq!(Route::of("unmatched").0, Route::Unmatched);
    }

    #[test]
    fn allow_lists_exactly_the_methods_the_table_answers() {
        assert_eq!(Route::Auth.allow(), "GET, HEAD, POST");
        assert_eq!(Route::Apps.allow(), "GET, POST");
        assert_eq!(Route::App.allow(), "GET, PATCH, DELETE");
        assert_eq!(Route::Session.allow(), "DELETE");
        assert_eq!(Route::Healthz.allow(), "GET, HEAD");
        assert_eq!(Route::AppSessions.allow(), "GET, HEAD");
        assert_eq!(Route::User.allow(), "GET, HEAD, DELETE");
        for r in Route::ALL {
            for m in [Method::PUT, Method::OPTIONS, Method::TRACE] {
                assert!(Endpoint::parse(&m, *r, ["x"; 2]).is_none(), "{r:?} {m}");
            }
        }
    }

    #[test]
    fn allow_can_name_every_method_the_table_answers() {
        let all = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
            Method::TRACE,
            Method::CONNECT,
        ];
        for r in Route::ALL {
            for m in &all {
                if Endpoint::parse(m, *r, ["x"; 2]).is_some() {
                    assert!(
                        METHODS.contains(m),
                        "{m} is answered but missing from METHODS"
                    );
                }
            }
        }
    }

    #[test]
    fn every_route_but_unmatched_answers_something() {
        for r in Route::ALL {
            assert_eq!(
                r.allow().is_empty(),
                *r == Route::Unmatched,
                "{r:?} answers no method"
            );
        }
    }

    #[test]
    fn admin_routes_follow_their_template() {
        assert!(Route::Session.is_admin() && Route::Apps.is_admin());
        assert!(!Route::Auth.is_admin() && !Route::Metrics.is_admin());
    }
}
