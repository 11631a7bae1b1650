//! Counts every API request the operator makes, by verb and resource
//! (`gatehouse_api_requests_total`), as a layer under the Kubernetes client: the
//! cost of a state transition is then visible, and a reconcile that reads from
//! the API instead of memory shows up at once.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Method, Request};
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// The layer; wraps the client's HTTP service.
#[derive(Clone)]
pub struct ApiCountLayer {
    metrics: Arc<Metrics>,
}

impl ApiCountLayer {
    /// Counts into these metrics.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        ApiCountLayer { metrics }
    }
}

impl<S> Layer<S> for ApiCountLayer {
    type Service = ApiCount<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiCount {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service the layer makes.
#[derive(Clone)]
pub struct ApiCount<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<Request<B>> for ApiCount<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (verb, resource) = classify(req.method(), req.uri().path(), req.uri().query());
        self.metrics.api_request(verb, &resource);
        self.inner.call(req)
    }
}

/// The Kubernetes verb and resource of a request: `GET
/// /apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings` is a `list` of
/// `rolebindings`; a status write is on `approvalrequests/status`.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> (&'static str, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    let (resource, name, sub) = match rest {
        ["namespaces", _ns, resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        [resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        [] => ("other", None, None),
    };
    let watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match (method.clone(), name.is_some()) {
        (Method::GET, _) if watch => "watch",
        (Method::GET, true) => "get",
        (Method::GET, false) => "list",
        (Method::POST, _) => "create",
        (Method::PUT, _) => "update",
        (Method::PATCH, _) => "patch",
        (Method::DELETE, true) => "delete",
        (Method::DELETE, false) => "deletecollection",
        _ => "other",
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_as_kubernetes_audits_them() {
        let c = |m: Method, p: &str, q: Option<&str>| {
            let (v, r) = classify(&m, p, q);
            format!("{v} {r}")
        };
        assert_eq!(
            c(
                Method::GET,
                "/apis/gatehouse.dev/v1alpha1/approvalrequests",
                Some("limit=500")
            ),
            "list approvalrequests"
        );
        assert_eq!(
            c(
                Method::GET,
                "/apis/gatehouse.dev/v1alpha1/approvalrequests",
                Some("watch=true&resourceVersion=5")
            ),
            "watch approvalrequests"
        );
        assert_eq!(
            c(
                Method::PUT,
                "/apis/gatehouse.dev/v1alpha1/namespaces/team/approvalrequests/x/status",
                None
            ),
            "update approvalrequests/status"
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/gatehouse-x",
                None
            ),
            "patch rolebindings"
        );
        assert_eq!(
            c(
                Method::DELETE,
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/g",
                None
            ),
            "delete clusterrolebindings"
        );
        assert_eq!(c(Method::GET, "/api/v1/namespaces/team", None), "get namespaces");
        assert_eq!(c(Method::GET, "/api/v1/namespaces", None), "list namespaces");
        assert_eq!(
            c(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/team/events",
                None
            ),
            "create events"
        );
        assert_eq!(c(Method::GET, "/version", None), "list other");
    }
}
