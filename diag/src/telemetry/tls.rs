//! TLS for `https://` exporters and remote write receivers: the roots to verify the server
//! with (`ca_certs`, else the system's), and the client certificate for mTLS (`https_keypairs`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::KeyPair;

/// Makes ring the process's rustls crypto provider (reqwest's client needs one, TLS or not);
/// a provider installed earlier stays.
#[cfg(feature = "otlp")]
pub(crate) fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A rustls client configuration; errors name the config key (under `section`, such as
/// `tracing_service`) and the file.
///
/// # Errors
/// An unreadable or empty PEM file, no usable system roots, more than one keypair, or a key
/// that does not match its certificate.
pub(crate) fn client_config(
    section: &str,
    ca_certs: &[impl AsRef<Path>],
    keypairs: &[KeyPair],
) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    if ca_certs.is_empty() {
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            bail!("{section}: no system CA certificates found to verify the server with; set {section}.ca_certs");
        }
    }
    for (i, path) in ca_certs.iter().enumerate() {
        let path = path.as_ref();
        let key = format!("{section}.ca_certs[{i}]");
        for cert in certs(path).with_context(|| key.clone())? {
            roots.add(cert).with_context(|| format!("{key}: {}: not a usable CA certificate", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .with_context(|| format!("{section}: no TLS protocol version available"))?
        .with_root_certificates(roots);
    match keypairs {
        [] => Ok(builder.with_no_client_auth()),
        [pair] => {
            let key = format!("{section}.https_keypairs[0]");
            let chain = certs(&pair.cert_file).with_context(|| format!("{key}.cert_file"))?;
            let private = PrivateKeyDer::from_pem_file(&pair.key_file).with_context(|| {
                format!("{key}.key_file: cannot read a PEM private key from {}", pair.key_file.display())
            })?;
            builder
                .with_client_auth_cert(chain, private)
                .with_context(|| format!("{key}: key and certificate do not match"))
        }
        _ => bail!("{section}.https_keypairs: {} keypairs given; one client certificate is supported", keypairs.len()),
    }
}

/// The certificates of a PEM file, at least one.
fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("cannot read PEM certificates from {}", path.display()))?;
    if certs.is_empty() {
        bail!("no PEM certificate in {}", path.display());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn system_roots_when_no_ca_certs_and_errors_name_the_key() {
        // Needs the system's CA bundle (Debian: ca-certificates).
        let config = client_config("tracing_service", &[] as &[PathBuf], &[]).unwrap();
        assert!(!config.client_auth_cert_resolver.has_certs());
        let e =
            format!("{:#}", client_config("remote_write", &[PathBuf::from("/nonexistent/ca.pem")], &[]).unwrap_err());
        assert!(e.starts_with("remote_write.ca_certs[0]: ") && e.contains("/nonexistent/ca.pem"), "{e}");
        let pair = || KeyPair { key_file: "/k".into(), cert_file: "/c".into() };
        let e = format!("{:#}", client_config("tracing_service", &[] as &[PathBuf], &[pair(), pair()]).unwrap_err());
        assert!(e.contains("tracing_service.https_keypairs") && e.contains("one client certificate"), "{e}");
    }
}
