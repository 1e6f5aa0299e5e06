//! Reading a configuration directory laid out as the Mesos and Marathon packages lay out `/etc`
//! (mesos-ha.md 4.3): one file per flag, `?flag` markers, the agent's `attributes/` and
//! `resources/` subdirectories, and the shared `../mesos/zk`. This is the only I/O of the sources;
//! what the entries mean is decided in `sources` (pure).

use crate::ConfigError;
use std::path::{Path, PathBuf};

/// The entries of a configuration directory, in sorted order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDir {
    pub path: PathBuf,
    pub entries: Vec<DirEntry>,
    /// `DIR/../mesos/zk` and its trimmed contents, when that file exists.
    pub zk_sibling: Option<(PathBuf, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub path: PathBuf,
    /// The file name (`quorum`, `?hostname_lookup`, `attributes`).
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file and its contents, trimmed.
    File(String),
    /// A subdirectory: (file name, trimmed contents, path) of each file in it, sorted.
    Dir(Vec<(String, String, PathBuf)>),
}

/// Names the packages' tools skip too: dot-files, editor backups and package-manager leftovers.
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.contains(".dpkg-")
        || name.ends_with(".rpmnew")
        || name.ends_with(".rpmsave")
        || name.ends_with(".rpmorig")
}

fn sorted_names(dir: &Path) -> Result<Vec<(String, PathBuf)>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::check(
            crate::CONFIG_DIR_FLAG,
            format!(
                "cannot read {} ({e}); create it or fix --config_dir",
                dir.display()
            ),
        )
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ConfigError::UnreadableFile {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| ConfigError::BadFile {
                path: path.clone(),
                message: "the name is not UTF-8, so it names no flag; rename or remove it".into(),
            })?;
        if !is_ignored(&name) {
            names.push((name, path));
        }
    }
    names.sort();
    Ok(names)
}

fn read_trimmed(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|e| ConfigError::UnreadableFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Reads `dir`: every flag file, every subdirectory one level deep, and `../mesos/zk`.
pub fn read_config_dir(dir: &Path) -> Result<ConfigDir, ConfigError> {
    let mut entries = Vec::new();
    for (name, path) in sorted_names(dir)? {
        let metadata = std::fs::metadata(&path).map_err(|e| ConfigError::UnreadableFile {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let kind = if metadata.is_dir() {
            let mut files = Vec::new();
            for (key, file) in sorted_names(&path)? {
                if std::fs::metadata(&file)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    return Err(ConfigError::BadFile {
                        path: file,
                        message: "is a directory; only files belong here".into(),
                    });
                }
                let value = read_trimmed(&file)?;
                files.push((key, value, file));
            }
            EntryKind::Dir(files)
        } else if metadata.is_file() {
            EntryKind::File(read_trimmed(&path)?)
        } else {
            return Err(ConfigError::BadFile {
                path,
                message: "is not a regular file; remove it".into(),
            });
        };
        entries.push(DirEntry { path, name, kind });
    }
    let sibling = dir.parent().map(|parent| parent.join("mesos").join("zk"));
    let zk_sibling = match sibling {
        Some(path) if path.is_file() => {
            let value = read_trimmed(&path)?;
            Some((path, value))
        }
        _ => None,
    };
    Ok(ConfigDir {
        path: dir.to_path_buf(),
        entries,
        zk_sibling,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_backups_and_dot_files() {
        for name in [
            ".quorum.swp",
            "quorum~",
            "quorum.dpkg-old",
            "zk.dpkg-dist",
            "ip.rpmsave",
            ".hidden",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        for name in ["quorum", "?hostname_lookup", "attributes", "work_dir"] {
            assert!(!is_ignored(name), "{name}");
        }
    }

    #[test]
    fn reads_a_package_layout() {
        let root = std::env::temp_dir().join(format!("tepui-config-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("mesos-slave");
        std::fs::create_dir_all(dir.join("attributes")).unwrap();
        std::fs::create_dir_all(root.join("mesos")).unwrap();
        std::fs::write(root.join("mesos/zk"), "zk://10.0.0.5:2181/mesos\n").unwrap();
        std::fs::write(dir.join("ip"), " 10.0.0.7\n").unwrap();
        std::fs::write(dir.join("ip~"), "old").unwrap();
        std::fs::write(dir.join("?no-hostname_lookup"), "").unwrap();
        std::fs::write(dir.join("attributes/zone"), "a\n").unwrap();
        std::fs::write(dir.join("attributes/rack"), "r1").unwrap();
        let read = read_config_dir(&dir).unwrap();
        let names: Vec<&str> = read.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["?no-hostname_lookup", "attributes", "ip"]);
        assert_eq!(read.entries[2].kind, EntryKind::File("10.0.0.7".into()));
        match &read.entries[1].kind {
            EntryKind::Dir(files) => {
                let keys: Vec<(&str, &str)> = files
                    .iter()
                    .map(|(k, v, _)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(keys, [("rack", "r1"), ("zone", "a")]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read.zk_sibling.as_ref().map(|(_, v)| v.as_str()),
            Some("zk://10.0.0.5:2181/mesos")
        );
        let missing = read_config_dir(&root.join("nope")).unwrap_err().to_string();
        assert!(
            missing.starts_with("--config_dir: cannot read ") && missing.contains("nope"),
            "{missing}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
