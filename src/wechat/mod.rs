//! Everything WeChat: the `jscode2session` client, the reading of its replies,
//! and the decryption and signature checks of user data.

pub(crate) mod client;
pub mod crypto;
pub(crate) mod reply;

pub use client::{WechatClient, WechatClientError};
pub use reply::{CodeSession, WechatError};
