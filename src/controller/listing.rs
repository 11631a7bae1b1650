//! One list page, parsed as it arrives instead of after it was read whole.
//!
//! kube's `Api::list` reads a page's body into one buffer and parses it: with
//! objects a tenant made a megabyte each, a page of 500 is half a gigabyte
//! before a single object is trimmed. Here the body is fed to the JSON parser as
//! it streams in (on a blocking thread, through a small buffer), and each object
//! is parsed as its wire type ([`crate::store::wire`]), which keeps only what memory
//! keeps: a page costs what its trimmed objects cost, whatever it held.

use std::{io::Read, pin::Pin, time::Duration};

use futures::{AsyncBufRead, AsyncReadExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::{api::ListParams, core::Request, Client, Resource};
use serde::{de::DeserializeOwned, Deserialize};

use super::watch::WatchError;

/// A list response: its metadata (continue token, resourceVersion) and items.
/// Not kube's `ObjectList`, whose flattened type fields make serde buffer the
/// whole body before parsing it.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct Page<T> {
    /// The continue token and resourceVersion.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The objects.
    #[serde(default)]
    pub items: Option<Vec<T>>,
}

/// Reads an async body from a blocking thread.
struct Blocking(Pin<Box<dyn AsyncBufRead + Send>>);

impl Read for Blocking {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        futures::executor::block_on(self.0.read(buf))
    }
}

/// Lists one page of `W` (all namespaces), parsing the body as it streams in.
pub async fn page<W>(client: &Client, params: &ListParams, timeout: Duration) -> Result<Page<W>, WatchError>
where
    W: Resource<DynamicType = ()> + DeserializeOwned + Send + 'static,
{
    let request = Request::new(W::url_path(&(), None))
        .list(params)
        .map_err(|e| WatchError::Api(kube::Error::BuildRequest(e)))?;
    let read = async {
        let body = client.request_stream(request).await?;
        let body: Pin<Box<dyn AsyncBufRead + Send>> = Box::pin(body);
        let parsed = tokio::task::spawn_blocking(move || {
            let reader = std::io::BufReader::with_capacity(64 * 1024, Blocking(body));
            serde_json::from_reader::<_, Page<W>>(reader)
        })
        .await
        .map_err(|e| WatchError::Parse(e.to_string()))?;
        parsed.map_err(|e| WatchError::Parse(e.to_string()))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| WatchError::Timeout(timeout))?
}
