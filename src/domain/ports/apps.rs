//! The port for apps: the configuration of each mini-program.

use std::future::Future;
use std::sync::Arc;

use super::StoreResult;
use crate::clock::Timestamp;
use crate::domain::app::{App, AppId, AppPatch, AppRef, NewApp};

/// Apps: the configuration of each mini-program.
pub trait AppStore: Send + Sync + 'static {
    /// Looks an app up by id or appid. Called on every request: must be cheap.
    fn app(&self, app: &AppRef<'_>) -> impl Future<Output = StoreResult<Option<Arc<App>>>> + Send;

    /// Every app, ordered by id.
    fn list_apps(&self) -> impl Future<Output = StoreResult<Vec<Arc<App>>>> + Send;

    /// Creates an app; [`StoreError::Conflict`](super::StoreError::Conflict) when its appid is taken.
    fn create_app(
        &self,
        app: NewApp,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Arc<App>>> + Send;

    /// Changes an app; [`StoreError::NotFound`](super::StoreError::NotFound) or [`StoreError::Conflict`](super::StoreError::Conflict).
    fn update_app(
        &self,
        id: AppId,
        patch: AppPatch,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Arc<App>>> + Send;

    /// Deletes an app and all its sessions; [`StoreError::NotFound`](super::StoreError::NotFound) if absent.
    fn delete_app(&self, id: AppId) -> impl Future<Output = StoreResult<()>> + Send;
}
