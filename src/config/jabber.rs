//! `[jabber]`: what the jabber agent's STARTTLS trusts besides the public roots. An
//! operator with a private XMPP server signed by their own authority names its
//! certificate here (PEM files); nothing turns verification off.

use std::path::PathBuf;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JabberConfig {
    /// PEM files of certificate authorities trusted in addition to the webpki roots.
    pub extra_ca_files: Vec<PathBuf>,
}

impl JabberConfig {
    /// The certificates of `extra_ca_files`, each file read and parsed; a file that
    /// cannot be read or holds no certificate is an error naming it.
    pub fn extra_roots(&self) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let mut out = Vec::new();
        for path in &self.extra_ca_files {
            let refuse = |reason: String| ConfigError::Value {
                key: "jabber.extra_ca_files",
                value: path.display().to_string(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| refuse(format!("it is not a PEM certificate file: {e}")))?;
            if certs.is_empty() {
                return Err(refuse("it holds no PEM certificate".into()));
            }
            out.extend(certs);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let c = JabberConfig {
            extra_ca_files: vec![path.clone()],
        };
        let e = c.extra_roots().unwrap_err().to_string();
        assert!(e.contains("jabber.extra_ca_files"), "{e}");
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let missing = JabberConfig {
            extra_ca_files: vec![dir.path().join("missing.pem")],
        };
        let e = missing.extra_roots().unwrap_err().to_string();
        assert!(e.contains("cannot read it"), "{e}");
    }
}
