//! Everything WeChat: the `jscode2session` client, the reading of its replies,
//! and the decryption and signature checks of user data.

pub mod client;
pub mod crypto;
pub mod reply;

pub use client::WechatClient;
pub use reply::{CodeSession, WechatError};
