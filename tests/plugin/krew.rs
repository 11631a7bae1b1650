//! The krew manifest (`plugins/gatehouse.yaml`) fits what this package builds and
//! what `hack/plugin-release.sh` packs.

use serde_json::Value;

#[test]
fn the_krew_manifest_installs_both_binaries_on_every_platform() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/gatehouse.yaml")).unwrap();
    let m: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(m["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(
        (m["kind"].as_str(), m["metadata"]["name"].as_str()),
        (Some("Plugin"), Some("gatehouse"))
    );
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(m["spec"]["version"], version.as_str());
    assert!(m["spec"]["shortDescription"]
        .as_str()
        .is_some_and(|d| d.len() <= 50));
    // Both binaries exist in this package (env! would not compile otherwise).
    let built = [
        env!("CARGO_BIN_EXE_kubectl-gatehouse"),
        env!("CARGO_BIN_EXE_kubectl_complete-gatehouse"),
    ];
    let names: Vec<&str> = built
        .iter()
        .map(|p| std::path::Path::new(p).file_name().unwrap().to_str().unwrap())
        .collect();
    let mut platforms = vec![];
    for p in m["spec"]["platforms"].as_array().unwrap() {
        let labels = &p["selector"]["matchLabels"];
        let (os, arch) = (labels["os"].as_str().unwrap(), labels["arch"].as_str().unwrap());
        platforms.push(format!("{os}/{arch}"));
        assert_eq!(p["bin"], "kubectl-gatehouse", "{os}/{arch}");
        let files: Vec<&str> = p["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["from"].as_str().unwrap())
            .collect();
        assert_eq!(files, names, "{os}/{arch}");
        // The archive name hack/plugin-release.sh gives it.
        let archive = format!("kubectl-gatehouse-{version}-{os}-{arch}.tar.gz");
        assert!(
            p["uri"].as_str().unwrap().ends_with(&archive),
            "{os}/{arch}: {}",
            p["uri"]
        );
        let sha = p["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{sha}"
        );
    }
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"]
    );
}
