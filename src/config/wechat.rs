//! Settings of the calls to WeChat's API.

use std::time::Duration;

use clap::Args;

use super::defaults;
use super::values::{duration_text, parse_duration};
use crate::wechat::WechatClient;
use crate::wechat::client::WechatClientError;

/// WeChat's API.
#[derive(Debug, Clone, Args)]
pub struct WechatSettings {
    /// Where WeChat's API is (tests and load tests point it at the mock).
    #[arg(id = "wechat_api_base", long = "wechat-api-base", env = "WAFER_WECHAT_API_BASE", default_value = defaults::WECHAT_API_BASE)]
    pub api_base: String,

    /// Total time allowed for one WeChat call (e.g. `5s`, `1500ms`).
    #[arg(id = "wechat_timeout", long = "wechat-timeout", env = "WAFER_WECHAT_TIMEOUT", default_value = duration_text(defaults::WECHAT_TIMEOUT), value_parser = parse_duration)]
    pub timeout: Duration,

    /// Time allowed to connect to WeChat (capped by the total timeout).
    #[arg(id = "wechat_connect_timeout", long = "wechat-connect-timeout", env = "WAFER_WECHAT_CONNECT_TIMEOUT", default_value = duration_text(defaults::WECHAT_CONNECT_TIMEOUT), value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

impl Default for WechatSettings {
    fn default() -> Self {
        WechatSettings {
            api_base: defaults::WECHAT_API_BASE.to_owned(),
            timeout: defaults::WECHAT_TIMEOUT,
            connect_timeout: defaults::WECHAT_CONNECT_TIMEOUT,
        }
    }
}

impl WechatSettings {
    /// The WeChat client these settings describe.
    pub fn client(&self) -> Result<WechatClient, WechatClientError> {
        WechatClient::new(&self.api_base, self.timeout, self.connect_timeout)
    }
}
