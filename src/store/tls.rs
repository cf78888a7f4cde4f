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

/// How a PostgreSQL URL's `sslmode` asks to use TLS, as libpq reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it; the certificate verified only with a CA
    /// file (as libpq with a root certificate).
    Prefer,
    /// TLS; the certificate verified only with a CA file.
    Require,
    /// TLS; the certificate must chain to the CA (any host name).
    VerifyCa,
    /// TLS; the certificate must chain to the CA and name the host.
    VerifyFull,
}

/// Splits `sslmode` out of a PostgreSQL URL (`postgres://…?sslmode=…`) or
/// key=value string: the mode, and the text with a mode tokio-postgres
/// understands in its place (it knows `disable`, `prefer` and `require`;
/// the verification modes are wafer's to enforce). Without `sslmode`: no
/// TLS, as wafer always did (libpq would try `prefer`); ask for it.
pub fn split_sslmode(url: &str) -> Result<(PgSslMode, String), ConnectError> {
    let bad = || ConnectError::Tls {
        setting: "WAFER_DATABASE_URL",
        why: "sslmode must be disable, prefer, require, verify-ca or verify-full".into(),
    };
    let parse = |v: &str| match v {
        "disable" => Ok(PgSslMode::Disable),
        "allow" | "prefer" => Ok(PgSslMode::Prefer),
        "require" => Ok(PgSslMode::Require),
        "verify-ca" => Ok(PgSslMode::VerifyCa),
        "verify-full" => Ok(PgSslMode::VerifyFull),
        _ => Err(bad()),
    };
    let for_driver = |m: PgSslMode| match m {
        PgSslMode::Disable => "disable",
        PgSslMode::Prefer => "prefer",
        _ => "require",
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((PgSslMode::Disable, url.to_owned()));
        };
        let mut mode = PgSslMode::Disable;
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", v)) => {
                    mode = parse(v)?;
                    kept.push(format!("sslmode={}", for_driver(mode)));
                }
                _ => kept.push(pair.to_owned()),
            }
        }
        return Ok((mode, format!("{base}?{}", kept.join("&"))));
    }
    let mut mode = PgSslMode::Disable;
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        match word.split_once('=') {
            Some(("sslmode", v)) => {
                mode = parse(v)?;
                kept.push(format!("sslmode={}", for_driver(mode)));
            }
            _ => kept.push(word.to_owned()),
        }
    }
    Ok((mode, kept.join(" ")))
}

/// Certificate checks for `mode`: `verify-full` checks chain and name,
/// `verify-ca` the chain only; `require`/`prefer` the chain only when a CA
/// file is given, else nothing (libpq's behaviour: encryption without
/// authentication of the server).
pub fn pg_client_config(mode: PgSslMode, ca: Option<&Path>) -> Result<ClientConfig, ConnectError> {
    const SETTING: &str = "WAFER_DATABASE_TLS_CA";
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|_| ConnectError::Tls {
            setting: SETTING,
            why: "no TLS protocol version is available".into(),
        })?;
    let verify_chain = matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull) || ca.is_some();
    if !verify_chain {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verify::Lenient {
                chain: None,
                provider,
            }))
            .with_no_client_auth());
    }
    let roots = Arc::new(roots(SETTING, ca)?);
    let webpki =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|_| ConnectError::Tls {
                setting: SETTING,
                why: "the CA certificates cannot verify servers".into(),
            })?;
    if mode == PgSslMode::VerifyFull {
        return Ok(builder.with_webpki_verifier(webpki).with_no_client_auth());
    }
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verify::Lenient {
            chain: Some(webpki),
            provider,
        }))
        .with_no_client_auth())
}

/// The verifier libpq's lenient modes need beyond the standard one.
mod verify {
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

    /// `sslmode=verify-ca` (`chain`: the chain must verify, the name need
    /// not match) or `sslmode=require` without a CA (no `chain`: any
    /// certificate). The handshake's signatures are checked either way.
    #[derive(Debug)]
    pub struct Lenient {
        pub chain: Option<Arc<WebPkiServerVerifier>>,
        pub provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for Lenient {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            let Some(chain) = &self.chain else {
                return Ok(ServerCertVerified::assertion());
            };
            match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Err(Error::InvalidCertificate(CertificateError::NotValidForName))
                | Err(Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    ..
                })) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            let algorithms = &self.provider.signature_verification_algorithms;
            verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_from_urls_and_key_values() {
        let (m, u) =
            split_sslmode("postgres://u@h/db?application_name=x&sslmode=verify-full").unwrap();
        assert_eq!(m, PgSslMode::VerifyFull);
        assert_eq!(u, "postgres://u@h/db?application_name=x&sslmode=require");
        let (m, u) = split_sslmode("postgres://u@h/db").unwrap();
        assert_eq!((m, u.as_str()), (PgSslMode::Disable, "postgres://u@h/db"));
        let (m, u) = split_sslmode("host=h user=u sslmode=verify-ca").unwrap();
        assert_eq!(
            (m, u.as_str()),
            (PgSslMode::VerifyCa, "host=h user=u sslmode=require")
        );
        assert_eq!(
            split_sslmode("postgres://h/db?sslmode=disable").unwrap().0,
            PgSslMode::Disable
        );
        assert!(split_sslmode("postgres://h/db?sslmode=sometimes").is_err());
    }
}
