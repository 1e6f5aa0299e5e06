//! `/files/*` endpoints of the agent (mesos-http-api.md section 5): browse, read, download, debug.
//!
//! Every path goes through `path_guard` first; nothing here opens a path the guard did not hand
//! back as an open descriptor. File system work runs on the blocking pool. Errors are plain text
//! with the status the spec names: 400 for a malformed request, 403 for a path that leads outside
//! a sandbox, 404 for a path that names nothing known.

// Handlers answer failures with ready-made responses; their size does not matter on this path.
#![allow(clippy::result_large_err)]

use crate::path_guard::{self, Opened, PathError};
use crate::sandbox::LATEST;
use crate::shared::Shared;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// Longest chunk `/files/read` returns at once.
pub const READ_LENGTH_MAX: u64 = 1024 * 1024;
/// Chunk size of `/files/download` streams.
const DOWNLOAD_CHUNK_BYTES: usize = 64 * 1024;

type Params = Query<HashMap<String, String>>;

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn error_response(error: PathError) -> Response {
    match error {
        PathError::BadRequest(m) => text(StatusCode::BAD_REQUEST, m),
        PathError::Forbidden(m) => text(StatusCode::FORBIDDEN, m),
        PathError::NotFound(m) => text(StatusCode::NOT_FOUND, m),
    }
}

fn required_path(params: &HashMap<String, String>) -> Result<String, Response> {
    match params.get("path") {
        Some(p) if !p.is_empty() => Ok(p.clone()),
        _ => Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'path=value' in query",
        )),
    }
}

/// Locates (under the core lock) and opens (on the blocking pool) the requested path.
async fn open(shared: &Arc<Shared>, requested: &str) -> Result<Opened, Response> {
    let located = path_guard::locate(&shared.core(), requested).map_err(error_response)?;
    tokio::task::spawn_blocking(move || path_guard::open(&located))
        .await
        .map_err(|e| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("file access failed: {e}"),
            )
        })?
        .map_err(error_response)
}

/// `ls -l` style mode: `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`.
pub fn mode_string(mode: u32) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        libc::S_IFSOCK => 's',
        _ => '-',
    };
    let mut out = String::with_capacity(10);
    out.push(kind);
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: bool, set: bool, lower: char, upper: char| match (exec, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    out.push(bit(0o400, 'r'));
    out.push(bit(0o200, 'w'));
    out.push(special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'));
    out.push(bit(0o040, 'r'));
    out.push(bit(0o020, 'w'));
    out.push(special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'));
    out.push(bit(0o004, 'r'));
    out.push(bit(0o002, 'w'));
    out.push(special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'));
    out
}

fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: passwd is plain old data; getpwuid_r fills it and points into `buf`, which outlives
    // every read below.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside `buf`.
    unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

fn group_name(gid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: as in `user_name`, with getgrgid_r.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || grp.gr_name.is_null() {
        return gid.to_string();
    }
    // SAFETY: on success gr_name is a NUL-terminated string inside `buf`.
    unsafe { std::ffi::CStr::from_ptr(grp.gr_name) }
        .to_string_lossy()
        .into_owned()
}

fn entry(path: String, meta: &std::fs::Metadata) -> serde_json::Value {
    serde_json::json!({
        "path": path,
        "nlink": meta.nlink(),
        "size": meta.size(),
        "mtime": meta.mtime(),
        "mode": mode_string(meta.mode()),
        "uid": user_name(meta.uid()),
        "gid": group_name(meta.gid()),
    })
}

fn list(opened: &Opened, requested: &str) -> std::io::Result<Vec<serde_json::Value>> {
    let meta = opened.file.metadata()?;
    let base = requested.trim_end_matches('/');
    if !meta.is_dir() {
        return Ok(vec![entry(base.to_string(), &meta)]);
    }
    // Read the directory through the verified descriptor, and describe entries without following
    // their symlinks.
    let dir = path_guard::fd_path(&opened.file);
    let mut entries = Vec::new();
    for item in std::fs::read_dir(&dir)? {
        let item = item?;
        let Ok(meta) = std::fs::symlink_metadata(dir.join(item.file_name())) else {
            continue;
        };
        entries.push((item.file_name().to_string_lossy().into_owned(), meta));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries
        .into_iter()
        .map(|(name, meta)| entry(format!("{base}/{name}"), &meta))
        .collect())
}

pub async fn browse(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    let requested = match required_path(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let opened = match open(&shared, &requested).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || list(&opened, &requested)).await {
        Ok(Ok(entries)) => Json(entries).into_response(),
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot list the directory: {e}"),
        ),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("file access failed: {e}"),
        ),
    }
}

fn integer_param(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Response> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            text(
                StatusCode::BAD_REQUEST,
                format!("'{name}' must be an integer, got '{v}'"),
            )
        }),
    }
}

fn read_chunk(
    mut opened: Opened,
    offset: Option<i64>,
    length: Option<i64>,
) -> Result<serde_json::Value, Response> {
    let meta = opened.file.metadata().map_err(|e| {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot stat the file: {e}"),
        )
    })?;
    if meta.is_dir() {
        return Err(text(StatusCode::BAD_REQUEST, "Cannot read a directory"));
    }
    let size = meta.len();
    let offset = match offset {
        None | Some(-1) => return Ok(serde_json::json!({"data": "", "offset": size})),
        Some(o) if o < 0 => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("'offset' must be -1 or more, got {o}"),
            ))
        }
        Some(o) => o as u64,
    };
    let length = match length {
        None | Some(-1) => READ_LENGTH_MAX,
        Some(l) if l < 0 => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("'length' must be -1 or more, got {l}"),
            ))
        }
        Some(l) => (l as u64).min(READ_LENGTH_MAX),
    };
    let mut data = Vec::new();
    if offset < size && length > 0 {
        opened
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| (&mut opened.file).take(length).read_to_end(&mut data))
            .map_err(|e| {
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the file: {e}"),
                )
            })?;
    }
    Ok(serde_json::json!({"data": String::from_utf8_lossy(&data), "offset": offset}))
}

pub async fn read(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    let requested = match required_path(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (offset, length) = match (
        integer_param(&params, "offset"),
        integer_param(&params, "length"),
    ) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let opened = match open(&shared, &requested).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || read_chunk(opened, offset, length)).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(r)) => r,
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("file access failed: {e}"),
        ),
    }
}

/// The file name as a header value can carry it.
fn attachment_name(real: &std::path::Path) -> String {
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != ';')
        .collect()
}

pub async fn download(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    let requested = match required_path(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let opened = match open(&shared, &requested).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let meta = match opened.file.metadata() {
        Ok(m) => m,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot stat the file: {e}"),
            )
        }
    };
    if meta.is_dir() {
        return text(StatusCode::BAD_REQUEST, "Cannot download a directory");
    }
    let name = attachment_name(&opened.real);
    let file = tokio::fs::File::from_std(opened.file);
    let stream = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; DOWNLOAD_CHUNK_BYTES];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, meta.len())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename={name}"),
        )
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot build the response: {e}"),
            )
        })
}

/// Every path the agent serves and the host directory behind it.
pub async fn debug(State(shared): State<Arc<Shared>>) -> Response {
    let core = shared.core();
    let mut map = serde_json::Map::new();
    let mut latest: HashMap<(String, String), String> = HashMap::new();
    for run in core.runs() {
        let dir = run.sandbox.display().to_string();
        map.insert(dir.clone(), serde_json::Value::String(dir.clone()));
        // Later runs overwrite earlier ones: `runs()` yields the newest last.
        latest.insert(
            (
                run.framework_id.value.clone(),
                run.info.task_id.value.clone(),
            ),
            dir,
        );
    }
    for ((fw, ex), dir) in latest {
        map.insert(
            format!("/frameworks/{fw}/executors/{ex}/runs/{LATEST}"),
            serde_json::Value::String(dir.clone()),
        );
        if let Some(runs) = std::path::Path::new(&dir).parent() {
            map.insert(
                runs.join(LATEST).display().to_string(),
                serde_json::Value::String(dir),
            );
        }
    }
    Json(serde_json::Value::Object(map)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(libc::S_IFREG | 0o644), "-rw-r--r--");
        assert_eq!(mode_string(libc::S_IFDIR | 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(libc::S_IFLNK | 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(libc::S_IFDIR | 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(libc::S_IFREG | 0o4755), "-rwsr-xr-x");
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }
}
