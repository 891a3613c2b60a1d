//! TLS for PostgreSQL connections, with rustls (ring): libpq's `sslmode` and
//! `sslrootcert` as URL parameters (or `PGSSLMODE` and `PGSSLROOTCERT`), with libpq's
//! meaning. tokio-postgres knows only `disable`, `prefer` and `require`, and leaves the
//! server certificate check to the TLS connector; this module takes those parameters out
//! of the URL and builds the connector that checks what the mode asks for:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (default) | when the server offers it | chain checked when a root certificate is there |
//! | `require` | always | chain checked when a root certificate is there |
//! | `verify-ca` | always | chain checked against the root certificate |
//! | `verify-full` | always | chain and host name checked |
//!
//! The root certificate is `sslrootcert` (a PEM file, or `system` for the operating
//! system's trusted roots), else `~/.postgresql/root.crt` when that file exists. Client
//! certificates (`sslcert`, `sslkey`) and channel binding are not supported: asking for
//! them is an error, not a silent downgrade.

use postgres::Socket;
use postgres::config::SslMode;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it (`allow` is taken as `prefer`).
    Prefer,
    /// TLS always.
    Require,
    /// TLS, and the server's certificate chain checked against the root certificate.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl TlsMode {
    fn parse(text: &str) -> Result<TlsMode, String> {
        Ok(match text {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode '{other}' (expected disable, allow, prefer, require, verify-ca or verify-full)"
                ));
            }
        })
    }

    fn ssl_mode(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }
}

/// The TLS connector for one database URL; cloned for each connection.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
}

/// Takes libpq's TLS parameters out of a `postgres://` URL: the URL to give
/// tokio-postgres (with `sslmode` set to what it knows), and the connector. `Err` is a
/// one-line reason naming the parameter.
pub fn from_url(url: &str) -> Result<(postgres::Config, Tls), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut root = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = Some(TlsMode::parse(&percent_decode(value)?)?),
            "sslrootcert" => root = Some(percent_decode(value)?),
            "sslcert" | "sslkey" | "sslpassword" | "sslcertmode" => {
                return Err(format!(
                    "{key}: client certificates are not supported; authenticate with a password or trust"
                ));
            }
            "channel_binding" if value == "require" => {
                return Err(
                    "channel_binding=require is not supported (steward's TLS offers no channel binding)".into(),
                );
            }
            _ => kept.push(pair),
        }
    }
    let mode = match mode {
        Some(mode) => mode,
        None => match std::env::var("PGSSLMODE") {
            Ok(text) if !text.is_empty() => TlsMode::parse(&text).map_err(|reason| format!("PGSSLMODE: {reason}"))?,
            _ => TlsMode::Prefer,
        },
    };
    let root = root.or_else(|| std::env::var("PGSSLROOTCERT").ok().filter(|text| !text.is_empty()));
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: postgres::Config = url.parse().map_err(|error: postgres::Error| error.to_string())?;
    config.ssl_mode(mode.ssl_mode());
    Ok((config, Tls::new(mode, root)?))
}

/// `%XX` escapes of a URL parameter value, decoded.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let byte = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("invalid percent-escape in URL parameter '{text}'"))?;
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("URL parameter '{text}' is not UTF-8"))
}

/// Where the trusted roots come from.
enum Roots {
    /// A PEM file.
    File(PathBuf),
    /// The operating system's trusted roots (`sslrootcert=system`).
    System,
}

impl Tls {
    fn new(mode: TlsMode, root: Option<String>) -> Result<Tls, String> {
        let roots = match root.as_deref() {
            Some("system") => Some(Roots::System),
            Some(path) => Some(Roots::File(PathBuf::from(path))),
            // libpq's default; used by the weaker modes only when it exists.
            None => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".postgresql").join("root.crt"))
                .filter(|path| path.is_file())
                .map(Roots::File),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = match (mode, roots) {
            (TlsMode::Disable, _) => None,
            (TlsMode::VerifyCa | TlsMode::VerifyFull, None) => {
                return Err(format!(
                    "sslmode={} needs a root certificate: set sslrootcert=FILE (PEM), sslrootcert=system, or put it in ~/.postgresql/root.crt",
                    if mode == TlsMode::VerifyCa {
                        "verify-ca"
                    } else {
                        "verify-full"
                    }
                ));
            }
            (_, None) => None,
            (_, Some(roots)) => {
                let store = Arc::new(root_store(&roots)?);
                let verifier = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                    .build()
                    .map_err(|error| format!("sslrootcert: {error}"))?;
                Some(verifier)
            }
        };
        let check = ServerCheck {
            chain,
            check_name: mode == TlsMode::VerifyFull,
            provider: provider.clone(),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(check))
            .with_no_client_auth();
        Ok(Tls {
            config: Arc::new(config),
        })
    }
}

/// The trusted roots, or why they cannot be read (naming the file).
fn root_store(roots: &Roots) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("sslrootcert=system: no trusted root certificates found on this system".into());
            }
        }
        Roots::File(path) => {
            let shown = path.display();
            let bytes = std::fs::read(path).map_err(|error| format!("sslrootcert {shown}: {error}"))?;
            let certificates = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| format!("sslrootcert {shown}: not PEM certificates: {error}"))?;
            if certificates.is_empty() {
                return Err(format!("sslrootcert {shown}: holds no PEM certificate"));
            }
            for certificate in certificates {
                store
                    .add(certificate)
                    .map_err(|error| format!("sslrootcert {shown}: {error}"))?;
            }
        }
    }
    Ok(store)
}

/// The server certificate check of a mode: none, the chain, or the chain and the name.
/// The handshake's signatures are always checked against the presented certificate.
#[derive(Debug)]
struct ServerCheck {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name: a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            outcome => outcome,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl MakeTlsConnect<Socket> for Tls {
    type Stream = TlsSocket;
    type TlsConnect = TlsConnector;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<TlsConnector, Self::Error> {
        // A Unix socket has no host name (and PostgreSQL offers no TLS on one).
        let name = if host.is_empty() {
            None
        } else {
            Some(ServerName::try_from(host.to_string())?)
        };
        Ok(TlsConnector {
            config: self.config.clone(),
            name,
        })
    }
}

/// Starts TLS on one connection.
pub struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    name: Option<ServerName<'static>>,
}

impl TlsConnect<Socket> for TlsConnector {
    type Stream = TlsSocket;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsSocket>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self
                .name
                .ok_or_else(|| io::Error::other("TLS needs a host name (not a Unix socket)"))?;
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, socket)
                .await?;
            Ok(TlsSocket(Box::new(stream)))
        })
    }
}

/// A connection's TLS stream.
pub struct TlsSocket(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for TlsSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(context, buffer)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(mut self: Pin<&mut Self>, context: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(context)
    }
}

impl TlsStream for TlsSocket {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url() {
        let (config, _) = from_url("postgres://u@db.example:5433/steward?sslmode=require&application_name=x").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_application_name(), Some("x"));
        let (config, _) = from_url("postgres://u@db.example/steward?sslmode=disable").unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn bad_tls_parameters_are_named() {
        let error = |url: &str| from_url(url).err().expect("an error");
        assert!(error("postgres://u@h/d?sslmode=verify").starts_with("invalid sslmode 'verify'"));
        assert!(error("postgres://u@h/d?sslcert=/x.pem").starts_with("sslcert: client certificates"));
        assert!(
            error("postgres://u@h/d?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
                .starts_with("sslrootcert /nonexistent/ca.pem: ")
        );
        assert!(
            error("postgres://u@h/d?sslmode=require&sslrootcert=%2Fno%2Fca.pem")
                .starts_with("sslrootcert /no/ca.pem: ")
        );
        assert!(error("postgres://u@h/d?sslrootcert=%zz").contains("percent-escape"));
    }
}
