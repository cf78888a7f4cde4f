//! wafer: the session server of WeChat mini-programs.
//!
//! A mini-program trades its `wx.login()` code for a session (`uuid` +
//! `skey`); business services then check that session on every request.
//! The layers: [`http`] (routing, bodies, responses), [`domain`] (the rules),
//! [`wechat`] (code exchange and crypto) and [`store`] (where sessions live).

#![warn(missing_docs)]

pub mod admin_cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod import;
mod labels;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod wechat;
