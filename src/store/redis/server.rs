//! Start-up checks of the Redis server: that the TLS handshake works, and
//! that session hashes get Redis' compact encoding.

use std::time::Duration;

use super::Redis;

/// The `hash-max-listpack-value` that keeps a session with a ~300-byte
/// user_info (up to 512 bytes) compact.
const RECOMMENDED_LISTPACK_VALUE: u64 = 512;

impl Redis {
    /// Over TLS: a TLS handshake with the first server, so that a wrong CA
    /// or host name stops wafer at start with the reason, instead of a
    /// Redis that never answers. A server that cannot be reached is not an
    /// error here (Redis may come later).
    pub async fn check_tls(&self) -> Result<(), String> {
        let Some((config, hosts)) = &self.tls else {
            return Ok(());
        };
        let Some((host, port)) = hosts.first() else {
            return Ok(());
        };
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .ok()?;
            let name = rustls::pki_types::ServerName::try_from(host.clone()).ok()?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            Some(connector.connect(name, tcp).await)
        };
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(2)), connect).await {
            Ok(Some(Err(e))) => Err(format!("TLS with Redis at {host}:{port} failed: {e}")),
            _ => Ok(()),
        }
    }

    /// Warns when Redis keeps session hashes in its large encoding: with
    /// `hash-max-listpack-value` under the size of a typical user_info, a
    /// session costs about 1.3 KiB instead of 0.9 KiB. Managed Redis often
    /// refuses `CONFIG`: then nothing is said.
    pub async fn check_hash_encoding(&self) {
        if let Some(v) = self
            .hash_listpack_value()
            .await
            .filter(|v| *v < RECOMMENDED_LISTPACK_VALUE)
        {
            tracing::warn!(
                hash_max_listpack_value = v,
                recommended = RECOMMENDED_LISTPACK_VALUE,
                "Redis keeps session hashes with a user_info in its large encoding (about 1.3 KiB \
                 per session instead of 0.9 KiB); set hash-max-listpack-value to 512"
            );
        }
    }

    /// Redis' `hash-max-listpack-value`, if it tells.
    pub async fn hash_listpack_value(&self) -> Option<u64> {
        use fred::prelude::ConfigInterface;
        let client = self.pool.next_connected();
        let got = client
            .config_get::<Vec<String>, _>("hash-max-listpack-value")
            .await
            .ok()?;
        got.get(1)?.parse().ok()
    }
}
