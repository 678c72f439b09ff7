//! Optional TLS with rustls: the certificate comes from PEM files or is generated at
//! start. The handshakes happen in the one accept loop, [`crate::http::conn`].

use std::net::IpAddr;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSource;
use crate::error::StartError;

/// A ready TLS configuration.
#[derive(Clone)]
pub struct Tls {
    /// What rustls serves with.
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate, `AB:CD:…`, as browsers show it.
    pub fingerprint: String,
    /// The leaf certificate, DER (a client that should trust it can add it).
    pub cert: CertificateDer<'static>,
}

/// `AB:CD:…`: the SHA-256 of `der`, as browsers show a certificate's fingerprint.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Loads (or, for [`TlsSource::SelfSigned`], makes) the certificate. A generated
/// certificate names localhost, the loopback addresses, `bind` and `hosts`.
pub fn load(source: &TlsSource, bind: IpAddr, hosts: &[String]) -> Result<Tls, StartError> {
    let (chain, key) = match source {
        TlsSource::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StartError::Tls(format!(
                        "cannot read the certificate {}; {e}. Give a PEM certificate chain",
                        cert.display()
                    ))
                })?;
            if chain.is_empty() {
                return Err(StartError::Tls(format!(
                    "no certificate in {}; give a PEM file with a CERTIFICATE block",
                    cert.display()
                )));
            }
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                StartError::Tls(format!(
                    "cannot read the private key {}; {e}. Give a PEM private key",
                    key.display()
                ))
            })?;
            (chain, key)
        }
        TlsSource::SelfSigned => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
            if !bind.is_unspecified() && !bind.is_loopback() {
                names.push(bind.to_string());
            }
            for h in hosts {
                let name = match h.rsplit_once(':') {
                    Some((n, port)) if port.parse::<u16>().is_ok() && !n.contains(':') => n,
                    _ => h.as_str(),
                };
                names.push(name.trim_matches(['[', ']']).to_string());
            }
            let made = rcgen::generate_simple_self_signed(names).map_err(|e| {
                StartError::Tls(format!("cannot generate a self-signed certificate; {e}"))
            })?;
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
            (vec![made.cert.der().clone()], key)
        }
    };
    let fingerprint = fingerprint(&chain[0]);
    let cert = chain[0].clone();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| StartError::Tls(format!("cannot use this certificate and key; {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        fingerprint,
        cert,
    })
}

impl Tls {
    /// What accepts TLS connections with this configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_loads_with_a_fingerprint() {
        let tls = load(
            &TlsSource::SelfSigned,
            IpAddr::from([0, 0, 0, 0]),
            &["desk.example.org:8443".into()],
        )
        .expect("generates");
        assert_eq!(tls.fingerprint.len(), 32 * 3 - 1);
        assert!(tls
            .fingerprint
            .chars()
            .all(|c| c == ':' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn missing_files_say_which() {
        let err = load(
            &TlsSource::Files {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            },
            IpAddr::from([127, 0, 0, 1]),
            &[],
        )
        .err()
        .expect("fails");
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
