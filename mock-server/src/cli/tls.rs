//! The TLS flags serve and proxy share (`--tls`, `--tls-cert`, …) and the identity they make.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

/// How a server (the mock or the proxy) serves TLS to its clients.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Serve `https://` and `wss://` (every port, the console and control API too) with a
    /// certificate made at start-up for localhost, 127.0.0.1 and ::1, signed by a throwaway
    /// CA. The CA's PEM is written to `--tls-ca-out` and named in the readiness line
    /// (`ca_file`): a client trusts that file and nothing else changes (docs/tls.md).
    #[arg(long, env = "MESSAGING_MOCK_TLS")]
    tls: bool,
    /// Serve `https://` and `wss://` with this PEM certificate chain (leaf first) instead of a
    /// generated one; needs `--tls-key`.
    #[arg(
        long,
        env = "MESSAGING_MOCK_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(
        long,
        env = "MESSAGING_MOCK_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Where `--tls` writes its CA certificate (PEM). Default: `messaging-mock-<pid>-ca.pem`
    /// in the temporary directory, removed at exit.
    #[arg(
        long,
        env = "MESSAGING_MOCK_TLS_CA_OUT",
        value_name = "FILE",
        requires = "tls"
    )]
    tls_ca_out: Option<PathBuf>,
    /// Another name the generated certificate is valid for, besides localhost, 127.0.0.1 and
    /// ::1 (repeatable): a container's service name, a LAN address.
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls")]
    tls_names: Vec<String>,
}

/// What `--tls` or `--tls-cert`/`--tls-key` serve.
pub struct TlsSetup {
    pub identity: mock_server::tls::TlsIdentity,
    /// The generated CA's PEM file, removed at exit unless the user named it.
    pub ca_file: Option<CaFile>,
}

pub struct CaFile {
    pub path: PathBuf,
    remove: bool,
}

impl Drop for CaFile {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Loads or makes the TLS identity before anything is bound: bad files end the start (exit 2).
pub fn tls_setup(args: &TlsArgs) -> anyhow::Result<Option<TlsSetup>> {
    use mock_server::tls::TlsIdentity;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let identity = TlsIdentity::from_pem_files(cert, key)?;
        return Ok(Some(TlsSetup {
            identity,
            ca_file: None,
        }));
    }
    if !args.tls {
        return Ok(None);
    }
    let identity = TlsIdentity::generate_for(&args.tls_names)?;
    let (path, remove) = match &args.tls_ca_out {
        Some(path) => (path.clone(), false),
        None => (
            std::env::temp_dir().join(format!("messaging-mock-{}-ca.pem", std::process::id())),
            true,
        ),
    };
    let ca = identity.ca_pem().unwrap_or_default();
    std::fs::write(&path, ca)
        .with_context(|| format!("cannot write the CA certificate to {}", path.display()))?;
    Ok(Some(TlsSetup {
        identity,
        ca_file: Some(CaFile { path, remove }),
    }))
}
