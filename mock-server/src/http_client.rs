//! One fresh HTTP/1.1 client connection, plain or TLS: what `ctl`, the proxy's forwarding, the
//! conformance kit's reference client and the tests use to call a mock or a service. hyper
//! does the HTTP; this only connects, secures and hands over the request sender.

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    /// The TLS handshake failed: an untrusted certificate, a name it does not cover.
    #[error("TLS with {authority}: {source}")]
    Tls {
        authority: String,
        source: std::io::Error,
    },
    #[error("HTTP with {authority}: {source}")]
    Http {
        authority: String,
        source: hyper::Error,
    },
}

/// A request sender on a new connection to `authority` (`host:port`), over TLS verified with
/// `tls` when given. The connection lives as long as the sender (a task drives it).
pub async fn connect(
    authority: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<SendRequest<Full<Bytes>>, ConnectError> {
    let tcp = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|source| ConnectError::Connect {
            authority: authority.to_owned(),
            source,
        })?;
    // Small requests: no waiting for the peer's delayed ACK.
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(tls) => {
            let stream = crate::tls::secure(authority, tcp, tls)
                .await
                .map_err(|source| ConnectError::Tls {
                    authority: authority.to_owned(),
                    source,
                })?;
            handshake(authority, stream).await
        }
        None => handshake(authority, tcp).await,
    }
}

async fn handshake<I>(authority: &str, io: I) -> Result<SendRequest<Full<Bytes>>, ConnectError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|source| ConnectError::Http {
            authority: authority.to_owned(),
            source,
        })?;
    tokio::spawn(connection);
    Ok(sender)
}
