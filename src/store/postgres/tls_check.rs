//! The start-up check of PostgreSQL's TLS: one handshake, so that a wrong CA
//! or host name stops wafer with the reason.

use std::sync::Arc;

use super::Postgres;

/// See [`Postgres::check_tls`].
#[derive(Clone)]
pub(super) struct PgTlsCheck {
    pub(super) config: Arc<rustls::ClientConfig>,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) required: bool,
}

impl Postgres {
    /// With TLS: asks the first server for TLS and makes one handshake, so
    /// that a wrong CA or host name stops wafer at start with the reason
    /// (the pool would only say that PostgreSQL does not answer). A server
    /// that cannot be reached is not an error here.
    pub async fn check_tls(&self) -> Result<(), String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Some(check) = &self.tls else {
            return Ok(());
        };
        let (host, port) = (check.host.as_str(), check.port);
        let probe = async {
            let mut tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
            // SSLRequest: length 8, code 80877103.
            tcp.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).await.ok()?;
            let mut answer = [0u8; 1];
            tcp.read_exact(&mut answer).await.ok()?;
            if answer[0] != b'S' {
                return Some(if check.required {
                    Err(format!(
                        "PostgreSQL at {host}:{port} does not offer TLS (sslmode requires it)"
                    ))
                } else {
                    Ok(())
                });
            }
            let name = rustls::pki_types::ServerName::try_from(host.to_owned()).ok()?;
            let connector = tokio_rustls::TlsConnector::from(check.config.clone());
            Some(
                connector
                    .connect(name, tcp)
                    .await
                    .map(drop)
                    .map_err(|e| format!("TLS with PostgreSQL at {host}:{port} failed: {e}")),
            )
        };
        match tokio::time::timeout(self.timeout, probe).await {
            Ok(Some(result)) => result,
            _ => Ok(()),
        }
    }
}
