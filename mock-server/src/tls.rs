//! TLS serving (`--tls`, `--tls-cert`/`--tls-key`, [`crate::MockServer::start_tls`]).
//!
//! `--tls` makes a throwaway certificate authority and a server certificate it signs for
//! `localhost`, `127.0.0.1` and `::1`: a client trusts the CA (one PEM file) and nothing else
//! changes, as with a real deployment. Given PEM files are served as they are. The crypto
//! provider is rustls' `ring`, the only one in the workspace.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The names the generated certificate is valid for.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate or key file larger than this is not PEM of one certificate chain.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The first byte of every TLS connection (a handshake record); anything else on a TLS port
/// is a client speaking plain HTTP to it.
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// Why TLS cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is larger than {MAX_PEM_BYTES} bytes: not a PEM certificate or key")]
    TooLarge { path: PathBuf },
    #[error("{path} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`): {reason}")]
    NoCertificate { path: PathBuf, reason: String },
    #[error(
        "{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1 `-----BEGIN … PRIVATE KEY-----`): {reason}"
    )]
    NoKey { path: PathBuf, reason: String },
    #[error("the certificate and key cannot be served: {0}")]
    Rejected(String),
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

/// What a TLS listener serves: the acceptor, and the CA a client must trust when the mock made
/// its own certificate.
#[derive(Clone)]
pub struct TlsIdentity {
    acceptor: TlsAcceptor,
    ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("generated_ca", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A fresh CA and a server certificate it signs for [`LOOPBACK_NAMES`] (ECDSA P-256,
    /// valid from yesterday for 365 days: within what Apple platforms accept for a
    /// user-trusted CA).
    pub fn generate() -> Result<Self, TlsError> {
        Self::generate_for(&[])
    }

    /// [`TlsIdentity::generate`], the certificate also valid for `names` (DNS names or IP
    /// addresses: a container's service name, a host's LAN address).
    pub fn generate_for(names: &[String]) -> Result<Self, TlsError> {
        let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let today = days_since_epoch(SystemTime::now());
        let (year, month, day) = crate::protocol::ids::civil_from_days(today - 1);
        let not_before = rcgen::date_time_ymd(year as i32, month as u8, day as u8);
        let not_after = not_before + Duration::from_secs(366 * 86_400);

        let ca_key = rcgen::KeyPair::generate().map_err(generate)?;
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "messaging-mock local CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(generate)?;

        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let mut all: Vec<String> = LOOPBACK_NAMES.iter().map(|n| (*n).to_owned()).collect();
        for name in names {
            if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
                return Err(TlsError::Generate(format!(
                    "`{name}` is neither a DNS name nor an IP address"
                )));
            }
            if !all.contains(name) {
                all.push(name.clone());
            }
        }
        let mut params = rcgen::CertificateParams::new(all).map_err(generate)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &ca).map_err(generate)?;

        let chain = vec![cert.der().clone(), ca.der().clone()];
        let key = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| TlsError::Generate(e.to_owned()))?;
        Ok(Self {
            acceptor: acceptor(chain, key)?,
            ca_pem: Some(ca.pem()),
        })
    }

    /// Serves the certificate chain in `cert` (PEM, leaf first) with the private key in `key`.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read_pem(cert)?;
        let key_pem = read_pem(key)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::NoCertificate {
                path: cert.to_owned(),
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert.to_owned(),
                reason: "no certificate section found".into(),
            });
        }
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
            path: key.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            acceptor: acceptor(chain, key_der)?,
            ca_pem: None,
        })
    }

    /// The PEM of the CA that signed a generated certificate (`None` for given files).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// What accepts a TLS connection for this identity.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// The workspace's crypto provider, for servers and clients alike: rustls' `ring`.
///
/// rustls 0.23.48 deprecates it for its lack of post-quantum key exchange, which a mock on
/// loopback does not need; its alternative, aws-lc-rs, would put a CMake build of a C library
/// into every build, the static musl artefacts included.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts `ca_pem` (one or more PEM certificates) and nothing
/// else, speaking HTTP/1.1: what a test client of a `--tls` mock needs.
pub fn client_config(ca_pem: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| TlsError::NoCertificate {
            path: PathBuf::from("(CA)"),
            reason: e.to_string(),
        })?;
        roots
            .add(cert)
            .map_err(|e| TlsError::Rejected(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate {
            path: PathBuf::from("(CA)"),
            reason: "no certificate section found".into(),
        });
    }
    client_config_trusting(roots)
}

/// A client configuration that trusts `roots`, speaking HTTP/1.1.
pub fn client_config_trusting(
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Opens a TLS connection to `authority` (`host:port`, `[v6]:port`), verifying the server as
/// `host` with `config`.
pub async fn connect(
    authority: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    secure(authority, tcp, config).await
}

/// The TLS handshake over `tcp`, opened to `authority`, verifying the server as its host.
pub async fn secure(
    authority: &str,
    tcp: tokio::net::TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
    })?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    // HTTP/1.1 only: the protocol's WebSocket upgrade is an HTTP/1.1 handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A regular file of at most [`MAX_PEM_BYTES`]; a FIFO or `/dev/zero` is refused, not read.
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if !meta.is_file() {
        return Err(TlsError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

fn days_since_epoch(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_has_a_ca() {
        let identity = TlsIdentity::generate().expect("generates");
        let pem = identity.ca_pem().expect("a CA");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        // Two generations are two CAs, never a fixed key.
        let other = TlsIdentity::generate().expect("generates");
        assert_ne!(other.ca_pem(), identity.ca_pem());
    }
}
