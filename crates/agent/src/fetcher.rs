//! The Mesos fetcher: a task's (or executor's) `CommandInfo.uris` put into its sandbox before its
//! command starts.
//!
//! Each URI (`value`, `executable`, `extract`, `cache`: downloaded once per agent, see
//! `fetch_cache`, `output_file`) is `http://` or `https://` (streamed to the file, a stall of
//! [`STALL_TIMEOUT`] between chunks fails it, as Mesos' `--fetcher_stall_timeout`), `file://` or
//! an absolute path on the agent (copied). It is saved under `output_file` or the URI's last path
//! segment; an executable one is made mode 755 and never extracted; otherwise, with `extract`
//! (the default), archives are unpacked into the sandbox the way the Mesos fetcher does it, with
//! `tar` (`.tar`, `.tar.gz`, `.tgz`, `.tar.bz2`, `.tbz2`, `.tar.xz`, `.txz`) or `unzip` (`.zip`),
//! and a lone `.gz` is decompressed beside it. What it does is appended to the sandbox's
//! `stderr`, as the Mesos fetcher's log lands there. Any failure fails the launch (TASK_FAILED,
//! REASON_CONTAINER_LAUNCH_FAILED), naming the URI; a kill meanwhile stops the fetch
//! (`Effect::AbortLaunch`, the driver drops the download) and the task ends TASK_KILLED.
//!
//! Saved names are checked like every sandbox path: relative, no `..`, so nothing lands outside
//! the sandbox.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::fetch_cache::{FetchCache, Served};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// Longest wait for the next chunk of a download (Mesos' `--fetcher_stall_timeout` default).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One entry of `CommandInfo.uris`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchUri {
    pub value: String,
    pub executable: bool,
    pub extract: bool,
    /// Downloaded once per agent and copied from the agent's cache (`fetch_cache`).
    pub cache: bool,
    pub output_file: Option<String>,
}

/// Where the host's trusted certificate authorities are looked for, in order, when
/// `SSL_CERT_FILE` does not name a bundle (Debian and Ubuntu, then Fedora and RHEL).
const CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The client for downloads: it verifies servers against the host's certificate authorities
/// (`SSL_CERT_FILE`, else the distribution's bundle), read once when the agent starts, and has
/// no overall timeout (a big artifact takes what it takes; a stalled one is failed per chunk).
/// Without a readable bundle, `https://` downloads fail certificate verification, naming the URI.
pub fn http_client() -> reqwest::Client {
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(CA_BUNDLES.iter().map(PathBuf::from))
        .find_map(|path| std::fs::read(&path).ok().map(|pem| (path, pem)));
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
    match bundle.map(|(path, pem)| (path, reqwest::Certificate::from_pem_bundle(&pem))) {
        Some((_, Ok(certificates))) => {
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Some((path, Err(e))) => {
            tracing::warn!(bundle = %path.display(), error = %e, "cannot read the certificate authorities; https:// URIs will not verify")
        }
        None => tracing::warn!("no certificate authority bundle found (SSL_CERT_FILE, {}); https:// URIs will not verify", CA_BUNDLES.join(", ")),
    }
    builder.build().unwrap_or_default()
}

/// Parses `CommandInfo.uris` as the JSON of the v1 API gives them.
pub fn parse_uris(values: &[serde_json::Value]) -> Result<Vec<FetchUri>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let value = v
                .get("value")
                .and_then(|s| s.as_str())
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("command.uris[{i}].value: a URI is required"))?;
            let flag = |name: &str, default: bool| {
                v.get(name).and_then(|b| b.as_bool()).unwrap_or(default)
            };
            Ok(FetchUri {
                value: value.trim().to_string(),
                executable: flag("executable", false),
                extract: flag("extract", true),
                cache: flag("cache", false),
                output_file: v
                    .get("output_file")
                    .and_then(|s| s.as_str())
                    .map(str::to_string),
            })
        })
        .collect()
}

/// Fetches every URI into `sandbox` in order, logging to `log` (the sandbox's `stderr`).
pub async fn fetch_all(
    uris: &[FetchUri],
    sandbox: &Path,
    log: &Path,
    http: &reqwest::Client,
    cache: &FetchCache,
) -> Result<(), String> {
    for uri in uris {
        note(log, &format!("Fetching URI '{}'", uri.value));
        if let Err(e) = fetch_one(uri, sandbox, log, http, cache).await {
            let message = format!("Failed to fetch '{}': {e}", uri.value);
            note(log, &message);
            return Err(message);
        }
    }
    Ok(())
}

async fn fetch_one(
    uri: &FetchUri,
    sandbox: &Path,
    log: &Path,
    http: &reqwest::Client,
    cache: &FetchCache,
) -> Result<(), String> {
    let name = saved_name(uri)?;
    let target = sandbox.join(&name);
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    match source(&uri.value)? {
        Source::Http(url) if uri.cache => {
            let served = cache
                .fetch(&url, &target, |path| {
                    let url = url.clone();
                    async move { download(http, &url, &path).await }
                })
                .await?;
            if served == Served::FromCache {
                note(log, &format!("Found '{}' in the fetcher cache", uri.value));
            }
        }
        Source::Http(url) => download(http, &url, &target).await?,
        Source::Local(path) => {
            tokio::fs::copy(&path, &target)
                .await
                .map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        }
    }
    note(
        log,
        &format!("Fetched '{}' to '{}'", uri.value, target.display()),
    );
    if uri.executable {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(|e| format!("cannot make {} executable: {e}", target.display()))?;
        return Ok(());
    }
    if uri.extract {
        if let Some(kind) = archive_kind(&name) {
            extract(kind, &target, sandbox).await?;
            note(
                log,
                &format!(
                    "Extracted '{}' into '{}'",
                    target.display(),
                    sandbox.display()
                ),
            );
        }
    }
    Ok(())
}

#[derive(Debug)]
enum Source {
    Http(String),
    Local(PathBuf),
}

fn source(value: &str) -> Result<Source, String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        return Ok(Source::Http(value.to_string()));
    }
    if let Some(path) = value.strip_prefix("file://") {
        return Ok(Source::Local(PathBuf::from(path)));
    }
    if value.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(value)));
    }
    match value.split_once("://") {
        Some((scheme, _)) => Err(format!(
            "the scheme '{scheme}' is not supported (http, https, file and absolute paths are)"
        )),
        None => Err("a relative path is not a URI (give an absolute path or a URL)".to_string()),
    }
}

/// `output_file`, or the last path segment of the URI (query and fragment left out); always a
/// relative path inside the sandbox.
fn saved_name(uri: &FetchUri) -> Result<PathBuf, String> {
    let name = match uri
        .output_file
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(name) => name.to_string(),
        None => {
            let path = uri.value.split(['?', '#']).next().unwrap_or_default();
            let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
            // What follows the authority (or the whole of an absolute path).
            let path = after_scheme.split_once('/').map_or("", |(_, p)| p);
            path.rsplit('/').next().unwrap_or_default().to_string()
        }
    };
    let path = PathBuf::from(&name);
    let inside = !name.is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some();
    if inside {
        Ok(path)
    } else {
        Err(format!(
            "cannot save it as '{name}': give output_file, a relative path inside the sandbox"
        ))
    }
}

async fn download(http: &reqwest::Client, url: &str, target: &Path) -> Result<(), String> {
    let response = tokio::time::timeout(STALL_TIMEOUT, http.get(url).send())
        .await
        .map_err(|_| format!("no answer within {} s", STALL_TIMEOUT.as_secs()))?
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let mut file = tokio::fs::File::create(target)
        .await
        .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let mut body = response.bytes_stream();
    loop {
        let chunk = match tokio::time::timeout(STALL_TIMEOUT, body.next()).await {
            Err(_) => {
                return Err(format!(
                    "the download stalled for {} s",
                    STALL_TIMEOUT.as_secs()
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(format!("the download failed: {e}")),
            Ok(Some(Ok(chunk))) => chunk,
        };
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot write {}: {e}", target.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchiveKind {
    Tar,
    Zip,
    Gzip,
}

/// The archive kinds the Mesos fetcher extracts, by file name.
fn archive_kind(name: &Path) -> Option<ArchiveKind> {
    let name = name.to_string_lossy().to_ascii_lowercase();
    const TARS: [&str; 7] = [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz",
    ];
    if TARS.iter().any(|ext| name.ends_with(ext)) {
        Some(ArchiveKind::Tar)
    } else if name.ends_with(".zip") {
        Some(ArchiveKind::Zip)
    } else if name.ends_with(".gz") {
        Some(ArchiveKind::Gzip)
    } else {
        None
    }
}

async fn extract(kind: ArchiveKind, archive: &Path, sandbox: &Path) -> Result<(), String> {
    let mut command = match kind {
        ArchiveKind::Tar => {
            let mut c = tokio::process::Command::new("tar");
            c.arg("-C").arg(sandbox).arg("-xf").arg(archive);
            c
        }
        ArchiveKind::Zip => {
            let mut c = tokio::process::Command::new("unzip");
            c.arg("-o").arg("-q").arg(archive).arg("-d").arg(sandbox);
            c
        }
        ArchiveKind::Gzip => {
            // `gzip -dkf` leaves the archive and writes the file beside it, without `.gz`.
            let mut c = tokio::process::Command::new("gzip");
            c.arg("-dkf").arg(archive);
            c
        }
    };
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("cannot extract it: `{program}` is not installed on this agent")
            }
            _ => format!("cannot run `{program}`: {e}"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "`{program}` could not extract it ({}): {}",
            output.status,
            stderr.trim()
        ))
    }
}

/// Appends one line to the sandbox's `stderr` (best effort: a log line never fails a launch).
fn note(log: &Path, line: &str) {
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(file, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn uri(value: &str, output_file: Option<&str>) -> FetchUri {
        FetchUri {
            value: value.into(),
            executable: false,
            extract: true,
            cache: false,
            output_file: output_file.map(str::to_string),
        }
    }

    #[test]
    fn uris_parse_with_mesos_defaults_and_name_a_missing_value() {
        let parsed = parse_uris(&[
            json!({"value": "http://h/a.tgz"}),
            json!({"value": "/opt/x", "executable": true, "extract": false, "cache": true, "output_file": "bin/x"}),
        ])
        .unwrap();
        assert_eq!(parsed[0], uri("http://h/a.tgz", None));
        assert!(parsed[1].executable && !parsed[1].extract && parsed[1].cache);
        assert_eq!(parsed[1].output_file.as_deref(), Some("bin/x"));
        assert_eq!(
            parse_uris(&[json!({"extract": true})]).unwrap_err(),
            "command.uris[0].value: a URI is required"
        );
    }

    #[test]
    fn saved_names_stay_inside_the_sandbox() {
        assert_eq!(
            saved_name(&uri("http://h/p/app.tar.gz?x=1#f", None)).unwrap(),
            PathBuf::from("app.tar.gz")
        );
        assert_eq!(
            saved_name(&uri("file:///opt/tool", None)).unwrap(),
            PathBuf::from("tool")
        );
        assert_eq!(
            saved_name(&uri("http://h/x", Some("conf/app.yml"))).unwrap(),
            PathBuf::from("conf/app.yml")
        );
        for bad in ["../escape", "/etc/passwd", "a/../../b"] {
            assert!(saved_name(&uri("http://h/x", Some(bad))).is_err(), "{bad}");
        }
        assert!(saved_name(&uri("http://h/", None)).is_err());
        assert!(saved_name(&uri("http://h", None)).is_err());
    }

    #[test]
    fn sources_and_archive_kinds_follow_the_mesos_fetcher() {
        assert!(matches!(source("https://h/a"), Ok(Source::Http(_))));
        assert!(matches!(source("file:///a"), Ok(Source::Local(p)) if p == Path::new("/a")));
        assert!(matches!(source("/a/b"), Ok(Source::Local(_))));
        assert!(source("hdfs://nn/a")
            .unwrap_err()
            .contains("'hdfs' is not supported"));
        assert!(source("a/b").is_err());
        assert_eq!(archive_kind(Path::new("a.TGZ")), Some(ArchiveKind::Tar));
        assert_eq!(archive_kind(Path::new("a.tar.xz")), Some(ArchiveKind::Tar));
        assert_eq!(archive_kind(Path::new("a.zip")), Some(ArchiveKind::Zip));
        assert_eq!(
            archive_kind(Path::new("a.json.gz")),
            Some(ArchiveKind::Gzip)
        );
        assert_eq!(archive_kind(Path::new("a.jar")), None);
    }
}
