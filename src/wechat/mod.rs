//! Everything WeChat: the API client (login codes, access tokens, phone
//! numbers, session-key checks), the reading of its replies, and the
//! decryption and signature checks of user data.

pub(crate) mod client;
pub mod crypto;
pub mod metrics;
pub(crate) mod reply;

pub use client::{WechatApi, WechatClient, WechatClientError};
pub use metrics::WechatMetrics;
pub use reply::{PhoneInfo, WechatError};
