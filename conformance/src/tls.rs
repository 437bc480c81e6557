//! `run --tls`: every case's mock serves `https://` and `wss://` with one certificate per run,
//! and the driver gets the CA file (`MESSAGING_CA_FILE`, contract §1.2).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mock_server::tls::TlsIdentity;

/// A run's TLS: the identity every case's mock serves and the CA file that verifies it, which
/// lives as long as the run's parameters do.
#[derive(Debug, Clone)]
pub struct RunTls {
    identity: TlsIdentity,
    ca_file: PathBuf,
    node_extra_ca_certs: PathBuf,
    _dir: Arc<tempfile::TempDir>,
}

impl PartialEq for RunTls {
    fn eq(&self, other: &Self) -> bool {
        self.ca_file == other.ca_file
    }
}

impl RunTls {
    /// A fresh CA and server certificate (for `localhost`, `127.0.0.1`, `::1`), the CA
    /// written to `ca.pem` in a temporary directory of the run's own.
    pub fn generate() -> Result<Self, String> {
        let identity = TlsIdentity::generate().map_err(|e| e.to_string())?;
        let dir = tempfile::Builder::new()
            .prefix("conformance-tls-")
            .tempdir()
            .map_err(|e| format!("no directory for the CA file: {e}"))?;
        let ca_file = dir.path().join("ca.pem");
        let ca = identity.ca_pem().unwrap_or_default();
        std::fs::write(&ca_file, ca)
            .map_err(|e| format!("cannot write {}: {e}", ca_file.display()))?;
        // Node takes one extra-CA file, read at start-up: the user's own (when set) plus ours.
        let node_extra_ca_certs = match std::env::var_os("NODE_EXTRA_CA_CERTS") {
            None => ca_file.clone(),
            Some(theirs) => {
                let mut bundle = std::fs::read_to_string(&theirs).map_err(|e| {
                    format!("NODE_EXTRA_CA_CERTS={}: {e}", Path::new(&theirs).display())
                })?;
                if !bundle.ends_with('\n') {
                    bundle.push('\n');
                }
                bundle.push_str(ca);
                let path = dir.path().join("node-extra-ca-certs.pem");
                std::fs::write(&path, bundle)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                path
            }
        };
        Ok(Self {
            identity,
            ca_file,
            node_extra_ca_certs,
            _dir: Arc::new(dir),
        })
    }

    pub fn identity(&self) -> &TlsIdentity {
        &self.identity
    }

    /// The CA certificate (PEM) a client must trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// What a driver's `NODE_EXTRA_CA_CERTS` names: the CA file, or a copy of the kit's own
    /// `NODE_EXTRA_CA_CERTS` bundle with the CA appended.
    pub fn node_extra_ca_certs(&self) -> &Path {
        &self.node_extra_ca_certs
    }
}

/// A rustls client configuration trusting the CA in `ca_file` alone.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    mock_server::tls::client_config(&pem)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e}", ca_file.display()))
}
