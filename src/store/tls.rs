//! TLS to Redis and PostgreSQL, on rustls: the client configuration from a
//! CA file (a managed service's CA), or the system's roots without one.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::store::ConnectError;

/// The roots a server's certificate must chain to: the PEM file `ca` (every
/// certificate in it), or the system's when `None`.
pub fn roots(setting: &'static str, ca: Option<&Path>) -> Result<RootCertStore, ConnectError> {
    let mut store = RootCertStore::empty();
    let bad = |why: String| ConnectError::Tls { setting, why };
    match ca {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|_| bad(format!("cannot read {}", path.display())))?
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    bad(format!(
                        "{} is not a PEM file of certificates",
                        path.display()
                    ))
                })?;
            if certs.is_empty() {
                return Err(bad(format!("{} holds no certificate", path.display())));
            }
            for cert in certs {
                store.add(cert).map_err(|_| {
                    bad(format!(
                        "{} holds a certificate rustls refuses",
                        path.display()
                    ))
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(bad("no system CA certificates were found".into()));
            }
        }
    }
    Ok(store)
}

/// A client configuration verifying servers against `roots` (chain and
/// host name), on the aws-lc-rs provider reqwest and fred use too.
pub fn client_config(
    setting: &'static str,
    roots: RootCertStore,
) -> Result<ClientConfig, ConnectError> {
    Ok(
        ClientConfig::builder_with_provider(
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .with_safe_default_protocol_versions()
        .map_err(|_| ConnectError::Tls {
            setting,
            why: "no TLS protocol version is available".into(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}
