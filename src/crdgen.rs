//! Rendering of the CRDs as YAML, the single source of `crds/`.

use thiserror::Error;

/// Failure to render a CRD.
#[derive(Debug, Error)]
pub enum CrdError {
    /// The CRD could not be serialized.
    #[error("cannot serialize CRD {name}: {source}")]
    Serialize {
        /// CRD name.
        name: String,
        /// Underlying error.
        source: serde_saphyr::ser::Error,
    },
}

/// One CRD rendered: file name in `crds/` and its YAML.
pub struct RenderedCrd {
    /// File name, e.g. `accesspolicies.gatehouse.dev.yaml`.
    pub file_name: String,
    /// YAML document.
    pub yaml: String,
}

/// Renders every CRD, one YAML document each.
pub fn render_crds() -> Result<Vec<RenderedCrd>, CrdError> {
    crate::api::crds()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = serde_saphyr::to_string(&crd).map_err(|source| CrdError::Serialize {
                name: name.clone(),
                source,
            })?;
            Ok(RenderedCrd {
                file_name: format!("{name}.yaml"),
                yaml,
            })
        })
        .collect()
}

/// All CRDs as one multi-document YAML stream.
pub fn render_all() -> Result<String, CrdError> {
    Ok(render_crds()?
        .into_iter()
        .map(|c| c.yaml)
        .collect::<Vec<_>>()
        .join("---\n"))
}
