//! The connection, by kubectl's rules: which kubeconfig (`--kubeconfig`, else every
//! file of `KUBECONFIG` merged, else `~/.kube/config`, else the in-cluster
//! ServiceAccount), which context, cluster and user, the flags that override the
//! server and credentials, impersonation, and the namespace (`-n`, else the context's).

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration as StdDuration,
};

use http::{HeaderName, HeaderValue};
use kube::{
    config::{AuthInfo, KubeConfigOptions, Kubeconfig, KubeconfigError},
    Client, Config,
};

use super::{CliError, KubeArgs};

/// A client configuration and where it came from.
#[derive(Clone)]
pub struct Connection {
    /// Client configuration, flags applied.
    pub config: Config,
    /// Namespace to work in: `-n`, else the context's, else `default`.
    pub namespace: String,
    /// Each API call's timeout (`--request-timeout`); `None`: no limit.
    pub request_timeout: Option<StdDuration>,
}

impl Connection {
    /// The API server's address, for messages.
    pub fn server(&self) -> String {
        self.config.cluster_url.to_string()
    }

    /// The client for single calls, bounded by `--request-timeout`.
    pub fn client(&self) -> Result<Client, CliError> {
        let mut config = self.config.clone();
        if let Some(t) = self.request_timeout {
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
            config.write_timeout = Some(t);
        }
        client(config)
    }

    /// The client for watches: a watch lasts as long as the wait, so
    /// `--request-timeout` bounds only its connecting.
    pub fn watch_client(&self) -> Result<Client, CliError> {
        let mut config = self.config.clone();
        if let Some(t) = self.request_timeout {
            config.connect_timeout = Some(t);
        }
        client(config)
    }
}

fn client(config: Config) -> Result<Client, CliError> {
    Client::try_from(config).map_err(|e| CliError::Kubeconfig {
        problem: format!("cannot build a client from the kubeconfig: {e}"),
        hint: "check the user's credentials and the cluster's certificate in the kubeconfig (kubectl config view)"
            .into(),
        source: Some(Box::new(e)),
    })
}

/// The files to read, in kubectl's order: `--kubeconfig` alone; else every file
/// of `KUBECONFIG` (missing ones skipped, as kubectl does); else `~/.kube/config`.
/// The flag's file must exist; `None` when no file applies.
pub fn kubeconfig_files(
    flag: Option<&Path>,
    env: Option<OsString>,
    home: Option<PathBuf>,
) -> Result<Option<Vec<PathBuf>>, CliError> {
    if let Some(path) = flag {
        return Ok(Some(vec![path.to_path_buf()]));
    }
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        let files: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        return Ok((!files.is_empty()).then_some(files));
    }
    Ok(home
        .map(|h| h.join(".kube").join("config"))
        .filter(|p| p.exists())
        .map(|p| vec![p]))
}

/// Reads and merges the files: the first file to set a value wins (kubectl's rule).
pub fn read_kubeconfig(files: &[PathBuf]) -> Result<Kubeconfig, CliError> {
    let mut merged: Option<Kubeconfig> = None;
    for file in files {
        let kc = Kubeconfig::read_from(file).map_err(|e| kubeconfig_error(e, Some(file)))?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m.merge(kc).map_err(|e| kubeconfig_error(e, Some(file)))?,
        });
    }
    Ok(merged.unwrap_or_default())
}

/// The client configuration for the flags. `kubeconfig_env` is the value of
/// `KUBECONFIG` and `home` the home directory (parameters, so tests set them).
pub async fn connect(
    args: &KubeArgs,
    kubeconfig_env: Option<OsString>,
    home: Option<PathBuf>,
) -> Result<Connection, CliError> {
    let request_timeout = request_timeout(&args.request_timeout)?;
    let files = kubeconfig_files(args.kubeconfig.as_deref(), kubeconfig_env, home)?;
    let options = KubeConfigOptions {
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    };
    let mut config = match (files, &args.server) {
        (Some(files), _) => {
            let kc = read_kubeconfig(&files)?;
            if kc.contexts.is_empty() && args.server.is_some() && args.context.is_none() {
                // kubectl works from flags alone when the kubeconfig names no cluster.
                Config::new(parse_server(args.server.as_deref().unwrap_or_default())?)
            } else {
                Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| kubeconfig_error(e, files.first()))?
            }
        }
        (None, Some(server)) => Config::new(parse_server(server)?),
        (None, None) => Config::incluster().map_err(|e| CliError::Kubeconfig {
            problem: "no kubeconfig found (KUBECONFIG is unset or names no file, and ~/.kube/config does not exist)"
                .into(),
            hint: "pass --kubeconfig PATH or set KUBECONFIG".into(),
            source: Some(Box::new(e)),
        })?,
    };
    apply_overrides(&mut config, args)?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok(Connection {
        config,
        namespace,
        request_timeout,
    })
}

fn parse_server(server: &str) -> Result<http::Uri, CliError> {
    server
        .parse()
        .map_err(|e| CliError::Invalid(format!("--server {server:?} is not a URL ({e})")))
}

/// `--request-timeout`: kubectl's values (`0` for none, `30s`, `1m`, or a bare number of seconds).
pub fn request_timeout(value: &str) -> Result<Option<StdDuration>, CliError> {
    let d = match value.trim() {
        "" | "0" => return Ok(None),
        v if v.chars().all(|c| c.is_ascii_digit()) => StdDuration::from_secs(
            v.parse()
                .map_err(|e| CliError::Invalid(format!("--request-timeout: {e}")))?,
        ),
        v => super::parse_timeout("request-timeout", v)?,
    };
    Ok((!d.is_zero()).then_some(d))
}

/// The flags that win over the kubeconfig: server, CA, TLS checking, token and impersonation.
pub fn apply_overrides(config: &mut Config, args: &KubeArgs) -> Result<(), CliError> {
    if let Some(server) = &args.server {
        config.cluster_url = parse_server(server)?;
        // The kubeconfig's tls-server-name belongs to its own server.
        config.tls_server_name = None;
    }
    if args.insecure_skip_tls_verify && args.certificate_authority.is_some() {
        return Err(CliError::Invalid(
            "--certificate-authority and --insecure-skip-tls-verify do not go together: trust a CA or check nothing"
                .into(),
        ));
    }
    if let Some(ca) = &args.certificate_authority {
        std::fs::metadata(ca)
            .map_err(|e| CliError::Invalid(format!("--certificate-authority {}: {e}", ca.display())))?;
        config.root_cert = None;
        config.root_cert_file = Some(ca.clone());
        config.accept_invalid_certs = false;
    }
    if args.insecure_skip_tls_verify {
        config.root_cert = None;
        config.root_cert_file = None;
        config.accept_invalid_certs = true;
    }
    if let Some(token) = &args.token {
        // The token replaces the kubeconfig user's credentials, keeping impersonation.
        let mut auth: AuthInfo = serde_json::from_value(serde_json::json!({ "token": token }))
            .map_err(|e| CliError::Invalid(format!("--token: {e}")))?;
        auth.impersonate = config.auth_info.impersonate.take();
        auth.impersonate_groups = config.auth_info.impersonate_groups.take();
        auth.impersonate_uid = config.auth_info.impersonate_uid.take();
        config.auth_info = auth;
    }
    if let Some(user) = &args.as_user {
        // The flags replace the kubeconfig's own impersonation, as in kubectl.
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = (!args.as_groups.is_empty()).then(|| args.as_groups.clone());
        config.auth_info.impersonate_uid = args.as_uid.clone();
    }
    // kube sends Impersonate-User and -Group itself, but not the UID.
    config
        .headers
        .retain(|(name, _)| name.as_str() != "impersonate-uid");
    if let Some(uid) = &config.auth_info.impersonate_uid {
        let value =
            HeaderValue::from_str(uid).map_err(|e| CliError::Invalid(format!("--as-uid {uid:?}: {e}")))?;
        config
            .headers
            .push((HeaderName::from_static("impersonate-uid"), value));
    }
    Ok(())
}

/// A kubeconfig problem, worded for a person: what is wrong and what to run.
fn kubeconfig_error(e: KubeconfigError, file: Option<&PathBuf>) -> CliError {
    let at = file.map_or(String::new(), |f| format!(" {}", f.display()));
    let (problem, hint) = match &e {
        KubeconfigError::ReadConfig(io, path) => (
            format!("cannot read the kubeconfig {}: {io}", path.display()),
            "check --kubeconfig or KUBECONFIG".to_string(),
        ),
        KubeconfigError::Parse(_) => (
            format!(
                "the kubeconfig{at} is not a valid kubeconfig ({})",
                e.to_string().lines().next().unwrap_or_default()
            ),
            "fix the file or point --kubeconfig/KUBECONFIG at another (kubectl config view)".to_string(),
        ),
        KubeconfigError::CurrentContextNotSet => (
            format!("the kubeconfig{at} has no current context"),
            "pick one with --context NAME or `kubectl config use-context NAME` (kubectl config get-contexts)"
                .to_string(),
        ),
        KubeconfigError::LoadContext(name) => (
            format!("the kubeconfig{at} has no context {name:?}"),
            "pick one that exists (kubectl config get-contexts)".to_string(),
        ),
        KubeconfigError::LoadClusterOfContext(name) => (
            format!("the kubeconfig{at} has no cluster {name:?}"),
            "pick one that exists with --cluster, or fix the context (kubectl config get-clusters)"
                .to_string(),
        ),
        KubeconfigError::MissingClusterUrl | KubeconfigError::ParseClusterUrl(_) => (
            format!("the kubeconfig{at} has no usable server address for the cluster ({e})"),
            "set the cluster's server, or pass --server URL".to_string(),
        ),
        _ => (
            format!("cannot use the kubeconfig{at}: {e}"),
            "check it with `kubectl config view`".to_string(),
        ),
    };
    CliError::Kubeconfig {
        problem,
        hint,
        source: Some(Box::new(e)),
    }
}

/// The names of the kubeconfig's contexts, clusters and users, for completion.
pub fn kubeconfig_names(
    args: &KubeArgs,
    kubeconfig_env: Option<OsString>,
    home: Option<PathBuf>,
) -> KubeconfigNames {
    let kc = kubeconfig_files(args.kubeconfig.as_deref(), kubeconfig_env, home)
        .ok()
        .flatten()
        .and_then(|files| read_kubeconfig(&files).ok())
        .unwrap_or_default();
    KubeconfigNames {
        contexts: kc.contexts.into_iter().map(|c| c.name).collect(),
        clusters: kc.clusters.into_iter().map(|c| c.name).collect(),
        users: kc.auth_infos.into_iter().map(|u| u.name).collect(),
    }
}

/// Names in a kubeconfig.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KubeconfigNames {
    /// Context names.
    pub contexts: Vec<String>,
    /// Cluster names.
    pub clusters: Vec<String>,
    /// User names.
    pub users: Vec<String>,
}
