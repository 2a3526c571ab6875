//! The storage flags every binary shares (the `clap` feature): one group, flattened into each
//! command, read into a [`StoreConfig`].

use crate::StoreConfig;
use std::path::PathBuf;

/// Where the catalog and the artifacts live.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
#[group(id = "stella-store")]
pub struct StorageArgs {
    /// The data directory: the embedded catalog (SQLite `catalog.db`), the artifact store
    /// (`objects/`) and scratch space (verified blobs), unless the URLs below move them.
    #[arg(long, env = "STELLA_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Keep the whole catalog — images, artifacts, results, advisories, VEX, unknowns — in
    /// PostgreSQL (`postgres://…`) instead of the embedded SQLite file
    /// (`$STELLA_DATABASE_URL` is read too).
    #[arg(
        long = "catalog-url",
        visible_alias = "database-url",
        env = "STELLA_CATALOG_URL",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    pub catalog_url: Option<String>,
    /// Keep artifacts in S3 (`s3://bucket[/prefix][?endpoint=…&region=…&allow_http=true]`,
    /// credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`) instead of `objects/`
    /// under the data directory.
    #[arg(long, env = "STELLA_OBJECT_STORE", value_name = "URL", global = true)]
    pub object_store: Option<String>,
}

impl StorageArgs {
    /// The configuration: `default_data_dir` when no data directory is given; empty values
    /// count as unset; `$STELLA_DATABASE_URL` names the catalog when nothing else does.
    pub fn config(&self, default_data_dir: impl FnOnce() -> PathBuf) -> StoreConfig {
        let set = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        StoreConfig {
            data_dir: self
                .data_dir
                .clone()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(default_data_dir),
            catalog_url: set(&self.catalog_url).or_else(|| {
                std::env::var("STELLA_DATABASE_URL")
                    .ok()
                    .filter(|v| !v.trim().is_empty())
            }),
            object_store_url: set(&self.object_store),
        }
    }

    /// Whether a catalog was named: a URL, or a data directory given explicitly.
    pub fn names_a_catalog(&self) -> bool {
        self.catalog_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
            || self.data_dir.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        storage: StorageArgs,
    }

    #[test]
    fn flags_become_a_config_with_empty_values_unset() {
        let parsed = Command::try_parse_from([
            "x",
            "--data-dir",
            "/var/lib/stella",
            "--database-url",
            "postgres://db/stella",
            "--object-store",
            "",
        ])
        .unwrap();
        let config = parsed.storage.config(|| PathBuf::from("/unused"));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/stella"));
        assert_eq!(config.catalog_url.as_deref(), Some("postgres://db/stella"));
        assert_eq!(config.object_store_url, None);
        assert!(parsed.storage.names_a_catalog());
        let bare = Command::try_parse_from(["x", "--catalog-url", " "]).unwrap();
        assert_eq!(
            bare.storage
                .config(|| PathBuf::from("/tmp/stella"))
                .data_dir,
            PathBuf::from("/tmp/stella")
        );
        assert!(!bare.storage.names_a_catalog());
    }
}
