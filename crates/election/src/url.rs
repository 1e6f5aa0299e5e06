//! ZooKeeper URLs as Mesos reads them (mesos-ha.md 2.1): `zk://host1:port1,host2:port2/path`,
//! `zk://user:pass@hosts/path` (digest authentication), and `file:///path` whose trimmed content is
//! one of those.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host1:port1,host2:port2` as the client connects to it.
    pub servers: String,
    /// The znode path; `/` when absent, never with a trailing `/` otherwise.
    pub path: String,
    /// `user:pass` for ZooKeeper's `digest` scheme.
    pub credentials: Option<(String, String)>,
}

/// Credentials never appear when a URL is printed or logged.
impl fmt::Debug for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = if self.credentials.is_some() {
            "<credentials>@"
        } else {
            ""
        };
        write!(f, "zk://{credentials}{}{}", self.servers, self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error(
        "'{0}' is not a ZooKeeper URL: expected zk://host:port[,host:port...]/path or file:///path"
    )]
    NotZk(String),
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("ZooKeeper URL has no servers")]
    NoServers,
    #[error("ZooKeeper server '{0}' is not host:port")]
    BadServer(String),
    #[error("ZooKeeper credentials must be user:password")]
    BadCredentials,
}

/// Whether a `--master`/`--zk` value names ZooKeeper (directly or through a file).
pub fn is_zk(value: &str) -> bool {
    value.starts_with("zk://") || value.starts_with("file://")
}

impl ZkUrl {
    pub fn parse(value: &str) -> Result<ZkUrl, UrlError> {
        let value = value.trim();
        if let Some(path) = value.strip_prefix("file://") {
            let content = std::fs::read_to_string(path).map_err(|e| UrlError::File {
                path: path.to_string(),
                message: e.to_string(),
            })?;
            let content = content.trim();
            if content.starts_with("file://") {
                return Err(UrlError::NotZk(content.to_string()));
            }
            return ZkUrl::parse(content);
        }
        let rest = value
            .strip_prefix("zk://")
            .ok_or_else(|| UrlError::NotZk(value.to_string()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // Credentials are the part before the last '@' (mesos-ha.md 2.1).
        let (credentials, hosts) = match authority.rfind('@') {
            Some(i) => {
                let (user, pass) = authority[..i]
                    .split_once(':')
                    .ok_or(UrlError::BadCredentials)?;
                if user.is_empty() {
                    return Err(UrlError::BadCredentials);
                }
                (
                    Some((user.to_string(), pass.to_string())),
                    &authority[i + 1..],
                )
            }
            None => (None, authority),
        };
        if hosts.is_empty() {
            return Err(UrlError::NoServers);
        }
        for server in hosts.split(',') {
            let valid = server
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !valid {
                return Err(UrlError::BadServer(server.to_string()));
            }
        }
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        Ok(ZkUrl {
            servers: hosts.to_string(),
            path: path.to_string(),
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_mesos_forms() {
        let url = ZkUrl::parse("zk://h1:2181,h2:2181/mesos").unwrap();
        assert_eq!(url.servers, "h1:2181,h2:2181");
        assert_eq!(url.path, "/mesos");
        assert!(url.credentials.is_none());
        let url = ZkUrl::parse("zk://u:p@ss@h1:2181/mesos/").unwrap();
        assert_eq!(url.credentials, Some(("u".to_string(), "p@ss".to_string())));
        assert_eq!(url.path, "/mesos");
        assert_eq!(ZkUrl::parse("zk://h1:2181").unwrap().path, "/");
        assert!(
            !format!("{url:?}").contains("p@ss"),
            "credentials never printed"
        );
    }

    #[test]
    fn rejects_what_is_not_a_zk_url() {
        assert!(matches!(ZkUrl::parse("h1:2181"), Err(UrlError::NotZk(_))));
        assert!(matches!(
            ZkUrl::parse("zk:///mesos"),
            Err(UrlError::NoServers)
        ));
        assert!(matches!(
            ZkUrl::parse("zk://h1/mesos"),
            Err(UrlError::BadServer(_))
        ));
        assert!(matches!(
            ZkUrl::parse("zk://:p@h1:1/m"),
            Err(UrlError::BadCredentials)
        ));
        assert!(matches!(
            ZkUrl::parse("file:///nonexistent/zk"),
            Err(UrlError::File { .. })
        ));
    }

    #[test]
    fn reads_file_urls() {
        let dir = std::env::temp_dir().join(format!("tepui-zkurl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("zk");
        std::fs::write(&file, "zk://127.0.0.1:2181/mesos\n").unwrap();
        let url = ZkUrl::parse(&format!("file://{}", file.display())).unwrap();
        assert_eq!(url.path, "/mesos");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
