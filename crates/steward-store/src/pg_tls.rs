//! TLS for PostgreSQL connections, with rustls (ring): libpq's `sslmode` and
//! `sslrootcert` as URL parameters (or `PGSSLMODE` and `PGSSLROOTCERT`). tokio-postgres
//! knows only `disable`, `prefer` and `require`, and leaves the server certificate check to
//! the TLS connector; this module takes those parameters out of the URL and builds the
//! connector that checks what the mode asks for:
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
//! system's trusted roots, which implies and requires `verify-full`), else
//! `~/.postgresql/root.crt` when that file exists. The handshake's signatures are checked
//! against the presented certificate in every mode. SCRAM logins get channel binding
//! (`tls-server-end-point`). Client certificates are not supported: asking for them is an
//! error, not a silent downgrade. The URL
//! is split and its keys decoded exactly as tokio-postgres reads them, and an `sslmode`
//! that tokio-postgres would still see after this module took its own is an error, so a
//! mode can never be read two ways.

use postgres::Socket;
use postgres::config::SslMode;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, SignatureScheme};
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
    let (base, query) = split_query(url);
    let mut mode = None;
    let mut root = None;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
        let Some((raw_key, raw_value)) = pair.split_once('=') else {
            kept.push(pair); // tokio-postgres reports it
            continue;
        };
        // Keys are compared decoded, as tokio-postgres reads them.
        let (key, value) = (percent_decode(raw_key)?, percent_decode(raw_value)?);
        match key.as_str() {
            "sslmode" => mode = Some(TlsMode::parse(&value)?),
            "sslrootcert" => root = Some(value).filter(|path| !path.is_empty()),
            "sslcertmode" if value == "disable" || value == "allow" => {}
            "sslcert" | "sslkey" | "sslpassword" | "sslcertmode" => {
                return Err(format!(
                    "{key}: client certificates are not supported; authenticate with a password or trust"
                ));
            }
            _ => kept.push(pair),
        }
    }
    for (variable, reason) in [
        ("PGSSLCERT", "client certificates are not supported"),
        ("PGSSLKEY", "client certificates are not supported"),
    ] {
        if std::env::var_os(variable).is_some_and(|value| !value.is_empty()) {
            return Err(format!("{variable}: {reason}; unset it to connect"));
        }
    }
    // libpq's environment default for channel binding, when the URL has none.
    let channel_binding = match std::env::var("PGCHANNELBINDING") {
        Ok(value) if !value.is_empty() && !kept.iter().any(|pair| pair.starts_with("channel_binding=")) => Some(value),
        _ => None,
    };
    let mode = match mode {
        Some(mode) => Some(mode),
        None => match std::env::var("PGSSLMODE") {
            Ok(text) if !text.is_empty() => {
                Some(TlsMode::parse(&text).map_err(|reason| format!("PGSSLMODE: {reason}"))?)
            }
            _ => None,
        },
    };
    let root = root.or_else(|| std::env::var("PGSSLROOTCERT").ok().filter(|text| !text.is_empty()));
    let mode = resolve_mode(mode, root.as_deref())?;
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: postgres::Config = url.parse().map_err(|error: postgres::Error| error.to_string())?;
    if let Some(value) = channel_binding {
        config.channel_binding(match value.as_str() {
            "disable" => postgres::config::ChannelBinding::Disable,
            "prefer" => postgres::config::ChannelBinding::Prefer,
            "require" => postgres::config::ChannelBinding::Require,
            other => {
                return Err(format!(
                    "PGCHANNELBINDING: invalid value '{other}' (expected disable, prefer or require)"
                ));
            }
        });
    }
    if config.get_ssl_mode() != SslMode::Prefer {
        // An sslmode this parser did not see; never let it stand unread.
        return Err("sslmode is given in a form steward cannot read; write it as sslmode=MODE".into());
    }
    let hosts = config.get_hosts();
    let mode = if !hosts.is_empty() && hosts.iter().all(|host| !matches!(host, postgres::config::Host::Tcp(_))) {
        // libpq ignores sslmode on Unix sockets, where PostgreSQL offers no TLS.
        TlsMode::Disable
    } else {
        mode
    };
    if config.get_hosts().is_empty() {
        // Only hostaddr: the addresses are the names TLS checks (as libpq does).
        let addresses: Vec<String> = config.get_hostaddrs().iter().map(ToString::to_string).collect();
        for address in addresses {
            config.host(&address);
        }
    }
    config.ssl_mode(mode.ssl_mode());
    Ok((config, Tls::new(mode, root)?))
}

/// The mode asked for (URL, else `PGSSLMODE`) given the root certificate asked for.
/// libpq: the system's roots vouch for any public certificate of any name, so they only
/// make sense with the name checked; verify-full is their default and nothing weaker is
/// accepted with them. Without either, prefer.
fn resolve_mode(mode: Option<TlsMode>, root: Option<&str>) -> Result<TlsMode, String> {
    match (mode, root) {
        (None, Some("system")) => Ok(TlsMode::VerifyFull),
        (Some(mode), Some("system")) if mode != TlsMode::VerifyFull => {
            Err("sslrootcert=system needs sslmode=verify-full (the system's roots vouch for any public name)".into())
        }
        (mode, _) => Ok(mode.unwrap_or(TlsMode::Prefer)),
    }
}

/// The part of a `postgres://` URL before its parameters, and the parameters (after the
/// `?`), split where tokio-postgres splits them: its user part ends at the first `@`, and
/// the parameters begin at the first `?` after that.
pub(crate) fn split_query(url: &str) -> (&str, Option<&str>) {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let after_user = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |at| after_scheme + at + 1);
    match url[after_user..].find('?') {
        Some(at) => (&url[..after_user + at], Some(&url[after_user + at + 1..])),
        None => (url, None),
    }
}

/// `%XX` escapes of a URL parameter key or value, decoded.
pub(crate) fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let byte = bytes
                .get(index + 1..index + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
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
        let check = match (mode, roots) {
            (TlsMode::Disable, _) => ServerCheck::Nothing,
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
            (_, None) => ServerCheck::Nothing,
            (TlsMode::VerifyFull, Some(roots)) => {
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(root_store(&roots)?), provider.clone())
                        .build()
                        .map_err(|error| format!("sslrootcert: {error}"))?;
                ServerCheck::ChainAndName(verifier)
            }
            // libpq: require (and prefer) with a root certificate check as verify-ca does.
            (_, Some(roots)) => ServerCheck::Chain(Arc::new(root_store(&roots)?)),
        };
        let verifier = Verifier {
            check,
            provider: provider.clone(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // What libpq sends (PostgreSQL 17 requires it for sslnegotiation=direct).
        config.alpn_protocols = vec![b"postgresql".to_vec()];
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

/// The server certificate check of a mode.
#[derive(Debug)]
enum ServerCheck {
    /// None (the handshake's signatures are still checked).
    Nothing,
    /// The chain up to one of these roots, not the name (verify-ca).
    Chain(Arc<rustls::RootCertStore>),
    /// The chain and the name (verify-full).
    ChainAndName(Arc<WebPkiServerVerifier>),
}

/// rustls's view of a [`ServerCheck`]. The handshake's signatures are always checked
/// against the presented certificate.
#[derive(Debug)]
struct Verifier {
    check: ServerCheck,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.check {
            ServerCheck::Nothing => Ok(ServerCertVerified::assertion()),
            ServerCheck::Chain(roots) => {
                let certificate = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &certificate,
                    roots,
                    intermediates,
                    now,
                    self.provider.signature_verification_algorithms.all,
                )?;
                Ok(ServerCertVerified::assertion())
            }
            ServerCheck::ChainAndName(verifier) => {
                verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
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
    /// `tls-server-end-point` (RFC 5929): the hash of the server's certificate, with the
    /// hash of its signature algorithm (SHA-256 for MD5 and SHA-1). SCRAM then binds the
    /// password exchange to this TLS session, which defeats a man in the middle even
    /// when the certificate is not checked. None for algorithms without one hash (RSA-PSS,
    /// EdDSA): the server then offers no binding either.
    fn channel_binding(&self) -> ChannelBinding {
        let certificate = self.0.get_ref().1.peer_certificates().and_then(|chain| chain.first());
        match certificate.and_then(|certificate| end_point_hash(certificate)) {
            Some(hash) => ChannelBinding::tls_server_end_point(hash),
            None => ChannelBinding::none(),
        }
    }
}

/// The `tls-server-end-point` hash of a DER certificate (see [`TlsSocket::channel_binding`]).
fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … }
    // AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters }
    let (certificate, _) = der_element(der, 0x30)?;
    let (_, after_tbs) = der_element(certificate, 0x30)?;
    let (algorithm, _) = der_element(after_tbs, 0x30)?;
    let (oid, _) = der_element(algorithm, 0x06)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    let bits = match oid {
        _ if oid == ECDSA_SHA1 => 256,
        [rest @ .., last] if rest == RSA => match last {
            0x04 | 0x05 | 0x0b => 256, // MD5, SHA-1, SHA-256
            0x0c => 384,
            0x0d => 512,
            _ => return None,
        },
        [rest @ .., last] if rest == ECDSA_SHA2 => match last {
            0x02 => 256,
            0x03 => 384,
            0x04 => 512,
            _ => return None,
        },
        _ => return None,
    };
    // The hash is over the whole encoding, tag and length included.
    Some(match bits {
        256 => sha2::Sha256::digest(der).to_vec(),
        384 => sha2::Sha384::digest(der).to_vec(),
        _ => sha2::Sha512::digest(der).to_vec(),
    })
}

/// The content of the DER element with tag `tag` at the start of `bytes`, and what follows it.
fn der_element(bytes: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = bytes.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, &byte| length << 8 | usize::from(byte));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> postgres::Config {
        from_url(url)
            .map(|(config, _)| config)
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }

    fn error(url: &str) -> String {
        from_url(url).err().unwrap_or_else(|| panic!("{url}: no error"))
    }

    #[test]
    fn tls_parameters_leave_the_url_and_set_the_mode() {
        let parsed = config("postgres://u@db.example:5433/steward?sslmode=require&application_name=x");
        assert_eq!(parsed.get_ssl_mode(), SslMode::Require);
        assert_eq!(parsed.get_application_name(), Some("x"));
        assert_eq!(
            config("postgres://u@db.example/steward?sslmode=disable").get_ssl_mode(),
            SslMode::Disable
        );
        assert_eq!(
            config("postgres://u@db.example/steward").get_ssl_mode(),
            SslMode::Prefer
        );
        assert_eq!(
            config("postgres://u@db.example/steward?sslmode=allow").get_ssl_mode(),
            SslMode::Prefer
        );
        // The checking modes read their root certificate (and ask for TLS, below).
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        for mode in ["verify-ca", "verify-full"] {
            let error = error(&format!("postgres://u@db/x?sslmode={mode}&sslrootcert={ca}"));
            assert!(error.contains("holds no PEM certificate"), "{error}");
        }
        assert_eq!(
            resolve_mode(Some(TlsMode::VerifyCa), Some("/ca.pem"))
                .unwrap()
                .ssl_mode(),
            SslMode::Require
        );
        assert_eq!(TlsMode::VerifyFull.ssl_mode(), SslMode::Require);
    }

    #[test]
    fn the_url_is_split_and_decoded_as_tokio_postgres_reads_it() {
        // A ? in the password does not start the parameters.
        let parsed = config("postgres://u:Xy7?kq@db/x?sslmode=require");
        assert_eq!(parsed.get_password(), Some(&b"Xy7?kq"[..]));
        assert_eq!(parsed.get_ssl_mode(), SslMode::Require);
        // Keys are decoded before they are compared.
        assert_eq!(
            config("postgres://u@db/x?ssl%6Dode=require").get_ssl_mode(),
            SslMode::Require
        );
        assert!(error("postgres://u@h/d?sslrootcert=%+F").contains("percent-escape"));
        assert!(error("postgres://u@h/d?sslrootcert=%zz").contains("percent-escape"));
        // An empty sslrootcert is no root certificate.
        assert_eq!(
            config("postgres://u@h/d?sslmode=require&sslrootcert=").get_ssl_mode(),
            SslMode::Require
        );
    }

    #[test]
    fn unix_sockets_and_bare_addresses_are_handled_as_libpq_does() {
        // No TLS on a Unix socket, whatever the mode (and no root certificate needed).
        let socket = config("postgres://u@%2Frun%2Fpostgresql/x?sslmode=verify-full");
        assert_eq!(socket.get_ssl_mode(), SslMode::Disable);
        // Only hostaddr: the address is the name TLS checks.
        let bare = config("postgres:///x?hostaddr=127.0.0.1&sslmode=require");
        assert_eq!(bare.get_hosts(), &[postgres::config::Host::Tcp("127.0.0.1".into())]);
    }

    #[test]
    fn the_system_roots_go_only_with_verify_full() {
        assert_eq!(resolve_mode(None, Some("system")), Ok(TlsMode::VerifyFull));
        assert_eq!(
            resolve_mode(Some(TlsMode::VerifyFull), Some("system")),
            Ok(TlsMode::VerifyFull)
        );
        for weaker in [TlsMode::Prefer, TlsMode::Require, TlsMode::VerifyCa] {
            let error = resolve_mode(Some(weaker), Some("system")).unwrap_err();
            assert!(
                error.starts_with("sslrootcert=system needs sslmode=verify-full"),
                "{error}"
            );
        }
        assert_eq!(resolve_mode(None, None), Ok(TlsMode::Prefer));
        assert!(error("postgres://u@h/d?sslmode=require&sslrootcert=system").contains("needs sslmode=verify-full"));
    }

    #[test]
    fn channel_binding_hashes_the_certificate_with_its_signature_hash() {
        // Test vectors: self-signed certificates made with openssl; the expected values are
        // `openssl x509 -outform der | sha256sum` (sha384sum).
        let hex = |bytes: Vec<u8>| bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
        let p256 = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cert-ecdsa-sha256.der"));
        assert_eq!(
            hex(end_point_hash(p256).unwrap()),
            "1ada5e828085bd8da4ea9bf2755d1395572c9ee488fea67c3a463a561229fc07"
        );
        let p384 = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cert-ecdsa-sha384.der"));
        assert_eq!(
            hex(end_point_hash(p384).unwrap()),
            "5c45910882f2ac2ffdea825987ee74219f64a38179113d33aa5eaa694d215db50b8491a9798f641c541b201b294b243e"
        );
        // Not a certificate, or cut short: no binding.
        assert_eq!(end_point_hash(&p256[..100]), None);
        assert_eq!(end_point_hash(b"not DER"), None);
    }

    #[test]
    fn bad_tls_parameters_are_named() {
        assert!(error("postgres://u@h/d?sslmode=verify").starts_with("invalid sslmode 'verify'"));
        assert!(error("postgres://u@h/d?sslcert=/x.pem").starts_with("sslcert: client certificates"));
        assert!(error("postgres://u@h/d?sslcertmode=require").starts_with("sslcertmode: client certificates"));
        config("postgres://u@h/d?sslcertmode=allow");
        assert!(
            error("postgres://u@h/d?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
                .starts_with("sslrootcert /nonexistent/ca.pem: ")
        );
        assert!(
            error("postgres://u@h/d?sslmode=require&sslrootcert=%2Fno%2Fca.pem")
                .starts_with("sslrootcert /no/ca.pem: ")
        );
    }
}
