//! Wire format of the Gatehouse resources (`gatehouse.dev/v1alpha1`).
//!
//! These structs are what the API server stores and what users write. Every field
//! carries a `///` comment because it becomes the description `kubectl explain`
//! shows. Validation that the API server can do on its own (required fields, enums,
//! lengths, formats, CEL rules) lives here as schema attributes; rules that need
//! other objects or the clock live in the decision core.

mod campaign;
mod certification;
mod channel;
mod common;
mod policy;
mod remediation;
mod request;
mod review;
mod usage;
pub mod wire;

pub use campaign::*;
pub use certification::*;
pub use channel::*;
pub use common::*;
pub use policy::*;
pub use remediation::*;
pub use request::*;
pub use review::*;
pub use usage::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every Gatehouse resource.
pub const GROUP: &str = "gatehouse.dev";
/// API version of every Gatehouse resource.
pub const VERSION: &str = "v1alpha1";

/// The CRDs of all resources, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        AccessPolicy::crd(),
        ApprovalRequest::crd(),
        AccessReview::crd(),
        AccessCampaign::crd(),
        AccessCertification::crd(),
        NotificationChannel::crd(),
        BindingUsage::crd(),
    ]
}
