//! Image references: `[registry[:port]/]repository[:tag][@digest]`, with Docker Hub's defaults.

use crate::{Digest, Error, Result};
use std::fmt;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port), e.g. `registry-1.docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/debian`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

const DOCKER_HUB: &str = "registry-1.docker.io";

impl Reference {
    /// Parses a reference as `docker pull` reads it.
    pub fn parse(s: &str) -> Result<Reference> {
        let invalid = |reason: &str| Error::Invalid {
            what: "image reference",
            reason: format!("{s:?}: {reason}"),
        };
        if s.is_empty() || s.len() > 1024 || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("empty, too long or contains whitespace"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(colon) => (
                &rest[..last_slash + colon],
                Some(rest[last_slash + colon + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                return Err(invalid("invalid tag"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (
                DOCKER_HUB.to_string(),
                if name.contains('/') {
                    name.to_string()
                } else {
                    format!("library/{name}")
                },
            ),
        };
        let (host, port) = match registry.rsplit_once(':') {
            Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
            _ => (registry.as_str(), None),
        };
        let host_ok = !host.is_empty()
            && host.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')
            && host.ends_with(|c: char| c.is_ascii_alphanumeric() || c == ']')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
            && !host.contains("..");
        if !host_ok || port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(invalid("invalid registry host"));
        }
        let registry = if registry == "docker.io" || registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
                })
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if repository.is_empty() || !repository.split('/').all(component_ok) {
            return Err(invalid("invalid repository name"));
        }
        Ok(Reference {
            registry,
            repository,
            tag: if digest.is_none() && tag.is_none() {
                Some("latest".into())
            } else {
                tag
            },
            digest,
        })
    }

    /// What to ask the manifests endpoint for: the digest when given, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// `registry/repository` as users write it (Docker Hub as `docker.io/…`).
    pub fn repository_url(&self) -> String {
        let registry = if self.registry == DOCKER_HUB {
            "docker.io"
        } else {
            &self.registry
        };
        format!("{registry}/{}", self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository_url())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_docker() {
        let r = Reference::parse("debian").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("registry-1.docker.io", "library/debian", Some("latest"))
        );
        let r = Reference::parse("127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/app", Some("1.2"))
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("ghcr.io/org/img@{d}")).unwrap();
        assert_eq!((r.tag, r.digest.unwrap().to_string()), (None, d));
        assert_eq!(
            Reference::parse("localhost/x:y").unwrap().registry,
            "localhost"
        );
        assert_eq!(
            Reference::parse("docker.io/library/alpine:3")
                .unwrap()
                .to_string(),
            "docker.io/library/alpine:3"
        );
        for bad in [
            "",
            "UPPER/case",
            "a b",
            "x:",
            "x:-tag",
            "repo@sha256:zz",
            "a//b",
            "../etc",
            "x/../y",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
