//! wafer: the session server of WeChat mini-programs.
//!
//! A mini-program trades its `wx.login()` code for a session (`uuid` +
//! `skey`); business services then check that session on every request.
//! The layers: [`http`] (routing, bodies, responses), [`domain`] (the rules),
//! [`wechat`] (code exchange and crypto) and [`store`] (where sessions live).

#![warn(missing_docs)]

/// Declares modules that are private to wafer, and public only with the
/// `testing` feature (the integration tests, benches and examples reach
/// inside): the product's surface stays `startup`, `config`, `admin_cli`
/// and `telemetry`, and the compiler reports any code only tests use.
macro_rules! inner_modules {
    ($($(#[$meta:meta])* $name:ident;)+) => {
        $(
            $(#[$meta])*
            #[cfg(feature = "testing")]
            pub mod $name;
            $(#[$meta])*
            #[cfg(not(feature = "testing"))]
            mod $name;
        )+
    };
}

pub mod admin_cli;
pub mod config;
mod labels;
pub mod startup;
pub mod telemetry;

inner_modules! {
    clock;
    domain;
    error;
    http;
    import;
    metrics;
    store;
    wechat;
}
