//! TLS for the MQTT connection: a rustls connector from the configured CA, or the web roots,
//! with an optional client certificate.

use crate::config::TlsConfig;
use anyhow::Context as _;
use std::sync::Arc;
use tokio_rustls::rustls::{self, pki_types::ServerName, RootCertStore};
use tokio_rustls::TlsConnector;

pub(crate) struct Tls {
    pub connector: TlsConnector,
    pub server_name: Option<ServerName<'static>>,
}

fn read_pem(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(crate) fn connector(cfg: &TlsConfig) -> anyhow::Result<Tls> {
    let mut roots = RootCertStore::empty();
    match &cfg.ca {
        Some(ca) => {
            let pem = read_pem(ca)?;
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert = cert.with_context(|| format!("{} is not a PEM certificate file", ca.display()))?;
                roots.add(cert).with_context(|| format!("{}: unusable CA certificate", ca.display()))?;
            }
            anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", ca.display());
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots);
    let config = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let pem = read_pem(cert)?;
            let chain = rustls_pemfile::certs(&mut &pem[..])
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{} is not a PEM certificate file", cert.display()))?;
            let pem = read_pem(key)?;
            let key = rustls_pemfile::private_key(&mut &pem[..])
                .ok()
                .flatten()
                .with_context(|| format!("{} holds no PEM private key", key.display()))?;
            builder.with_client_auth_cert(chain, key).context("client certificate and key do not match")?
        }
        _ => builder.with_no_client_auth(),
    };
    let server_name = match &cfg.server_name {
        Some(name) => Some(ServerName::try_from(name.clone()).with_context(|| format!("bad TLS server_name {name:?}"))?),
        None => None,
    };
    Ok(Tls { connector: TlsConnector::from(Arc::new(config)), server_name })
}
