//! Kubernetes-native authentication and authorisation of API callers: `Authorization: Bearer
//! <token>` → `authentication.k8s.io/v1` TokenReview (who is it?) → `authorization.k8s.io/v1`
//! SubjectAccessReview for that user, uid, groups and extra on a `stella-ops.org` resource (may
//! they?). Both answers, positive and negative, are reused for a short time from bounded caches
//! so a burst of requests costs the API server one review each; concurrent requests with the
//! same token share one review in flight. Tokens are never stored or logged: the caches are
//! keyed by a keyed hash of the token.

use super::{Error, api_server_failure};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Longest bearer token sent for review (service-account JWTs are about 1 KiB).
const MAX_TOKEN_BYTES: usize = 8192;

/// An authenticated caller, as the TokenReview described them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) username: String,
    pub(crate) uid: Option<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) extra: BTreeMap<String, Vec<String>>,
}

/// A caller of this request: who, and the key of their token.
#[derive(Debug)]
pub(crate) struct Caller {
    token: TokenKey,
    pub(crate) user: Arc<User>,
}

/// What a request needs: a verb on one of our resources, in a namespace or cluster-wide.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Access {
    pub(crate) verb: &'static str,
    pub(crate) resource: &'static str,
    /// `None`: at the cluster scope (every namespace).
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
}

impl Access {
    /// `get scans` in every namespace: digest-addressed reads.
    pub(crate) fn read_all_scans() -> Access {
        Access {
            verb: "get",
            resource: "scans",
            namespace: None,
            name: None,
        }
    }

    /// `get` on one Scan.
    pub(crate) fn read_scan(namespace: &str, name: &str) -> Access {
        Access {
            verb: "get",
            resource: "scans",
            namespace: Some(namespace.into()),
            name: Some(name.into()),
        }
    }

    /// `create scans` in every namespace: running a policy evaluation.
    pub(crate) fn evaluate() -> Access {
        Access {
            verb: "create",
            resource: "scans",
            namespace: None,
            name: None,
        }
    }

    /// `get` on one (cluster-scoped) Schedule: its runs.
    pub(crate) fn read_schedule(name: &str) -> Access {
        Access {
            verb: "get",
            resource: "schedules",
            namespace: None,
            name: Some(name.into()),
        }
    }

    /// `list` on Schedules / FeedSources (cluster-scoped): the scheduler's cursor, the feeds.
    pub(crate) fn list(resource: &'static str) -> Access {
        Access {
            verb: "list",
            resource,
            namespace: None,
            name: None,
        }
    }

    /// `verb` on a namespaced Notify kind (`notifyrules`, `notifychannels`): in one
    /// namespace (`None`: every namespace), on one object where named.
    pub(crate) fn notify(
        verb: &'static str,
        resource: &'static str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Access {
        Access {
            verb,
            resource,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
        }
    }

    /// `get` on one (cluster-scoped) Policy.
    pub(crate) fn read_policy(name: &str) -> Access {
        Access {
            verb: "get",
            resource: "policies",
            namespace: None,
            name: Some(name.into()),
        }
    }
}

impl std::fmt::Display for Access {
    /// As the API server words it: `get resource "scans" in API group "stella-ops.org" in the
    /// namespace "a"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resource \"{}\" in API group \"{}\"",
            self.verb,
            self.resource,
            stella_crds::GROUP
        )?;
        match &self.namespace {
            Some(ns) => write!(f, " in the namespace \"{ns}\""),
            None => write!(f, " at the cluster scope"),
        }
    }
}

/// A keyed 128-bit hash of a token (two SipHash keys drawn at start-up): what the caches
/// remember instead of the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TokenKey(u64, u64);

/// The reviewer and its two caches.
pub(crate) struct Reviews {
    client: kube::Client,
    keys: (RandomState, RandomState),
    /// Token → the user it authenticates (`None`: not a valid token).
    users: Mutex<Cache<TokenKey, Option<Arc<User>>>>,
    /// (token, access) → allowed.
    decisions: Mutex<Cache<(TokenKey, Access), bool>>,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users = self.users.lock().map(|c| c.len()).unwrap_or_default();
        let decisions = self.decisions.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("Reviews")
            .field("users", &users)
            .field("decisions", &decisions)
            .finish_non_exhaustive()
    }
}

impl Reviews {
    pub(crate) fn new(client: kube::Client, ttl: Duration, entries: usize) -> Reviews {
        Reviews {
            client,
            keys: (RandomState::new(), RandomState::new()),
            users: Mutex::new(Cache::new(ttl, entries)),
            decisions: Mutex::new(Cache::new(ttl, entries)),
        }
    }

    /// The caller behind an `Authorization` header value.
    pub(crate) async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Error> {
        let token = bearer(authorization)?;
        let key = TokenKey(self.keys.0.hash_one(token), self.keys.1.hash_one(token));
        let slot = lock(&self.users).slot(&key, Instant::now());
        let user = slot
            .get_or_try_init(|| self.review_token(token))
            .await?
            .clone();
        match user {
            Some(user) => Ok(Caller { token: key, user }),
            None => Err(Error::Unauthenticated(
                "the bearer token is not valid (the API server's TokenReview rejected it)".into(),
            )),
        }
    }

    /// Whether `caller` may do `access`: 403 unless the SubjectAccessReview allows it.
    pub(crate) async fn authorize(&self, caller: &Caller, access: Access) -> Result<(), Error> {
        let slot = lock(&self.decisions).slot(&(caller.token, access.clone()), Instant::now());
        let allowed = *slot
            .get_or_try_init(|| self.review_access(&caller.user, &access))
            .await?;
        if allowed {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "user \"{}\" cannot {access}",
                caller.user.username
            )))
        }
    }

    async fn review_token(&self, token: &str) -> Result<Option<Arc<User>>, Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        // The response echoes the token: only its status is looked at, nothing is logged.
        let status = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| api_server_failure("TokenReview", e))?
            .status
            .unwrap_or_default();
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        if status.authenticated != Some(true) || username.is_empty() {
            tracing::debug!(
                reason = status.error.as_deref().unwrap_or("not authenticated"),
                "token review refused a bearer token"
            );
            return Ok(None);
        }
        Ok(Some(Arc::new(User {
            username,
            uid: user.uid,
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default(),
        })))
    }

    async fn review_access(&self, user: &User, access: &Access) -> Result<bool, Error> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.username.clone()),
                uid: user.uid.clone(),
                groups: Some(user.groups.clone()),
                extra: Some(user.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(stella_crds::GROUP.into()),
                    resource: Some(access.resource.into()),
                    verb: Some(access.verb.into()),
                    namespace: access.namespace.clone(),
                    name: access.name.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let status = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| api_server_failure("SubjectAccessReview", e))?
            .status
            .unwrap_or_default();
        tracing::debug!(
            user = %user.username,
            access = %access,
            allowed = status.allowed,
            "subject access review"
        );
        Ok(status.allowed && status.denied != Some(true))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a consistent map (every update is one insert or
    // remove): keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The token of `Bearer <token>` (the scheme case-insensitive, as RFC 7235 says).
fn bearer(authorization: Option<&str>) -> Result<&str, Error> {
    let missing = || {
        Error::Unauthenticated("a bearer token is required (Authorization: Bearer <token>)".into())
    };
    let value = authorization.ok_or_else(missing)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    if token.len() > MAX_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Unauthenticated(
            "the bearer token is not valid (malformed)".into(),
        ));
    }
    Ok(token)
}

/// A bounded map whose entries expire `ttl` after they were made. An entry is a cell the first
/// requester fills and later ones await; a cell left empty by a failed review is filled by the
/// next requester, so failures are not remembered.
#[derive(Debug)]
struct Cache<K, V> {
    entries: HashMap<K, (Instant, Arc<OnceCell<V>>)>,
    ttl: Duration,
    max: usize,
}

impl<K: Clone + Eq + Hash, V> Cache<K, V> {
    fn new(ttl: Duration, max: usize) -> Cache<K, V> {
        Cache {
            entries: HashMap::new(),
            ttl,
            max: max.max(1),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The live cell for `key`, or a new one (making room first: expired entries go, then the
    /// oldest).
    fn slot(&mut self, key: &K, now: Instant) -> Arc<OnceCell<V>> {
        if let Some((expires, cell)) = self.entries.get(key)
            && *expires > now
        {
            return cell.clone();
        }
        self.entries.remove(key);
        if self.entries.len() >= self.max {
            self.entries.retain(|_, (expires, _)| *expires > now);
        }
        if self.entries.len() >= self.max
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        let cell = Arc::new(OnceCell::new());
        self.entries
            .insert(key.clone(), (now + self.ttl, cell.clone()));
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer(Some("Bearer abc.def")).unwrap(), "abc.def");
        assert_eq!(bearer(Some("bearer abc")).unwrap(), "abc");
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
            Some("Bearer a b"),
            Some("Bearer a\u{7f}"),
        ] {
            assert_eq!(
                bearer(bad).unwrap_err().code(),
                "unauthenticated",
                "{bad:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(bearer(Some(&long)).is_err());
    }

    #[test]
    fn cache_entries_live_for_the_ttl() {
        let mut cache: Cache<u32, bool> = Cache::new(Duration::from_secs(10), 8);
        let t0 = Instant::now();
        let cell = cache.slot(&1, t0);
        cell.set(true).unwrap();
        assert_eq!(
            cache.slot(&1, t0 + Duration::from_secs(9)).get(),
            Some(&true)
        );
        assert_eq!(cache.slot(&1, t0 + Duration::from_secs(10)).get(), None);
    }

    #[test]
    fn cache_is_bounded_dropping_expired_then_oldest() {
        let mut cache: Cache<u32, u32> = Cache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for k in 0..3 {
            cache.slot(&k, at(u64::from(k))).set(k).unwrap();
        }
        // Full: the oldest (0) makes room for 3.
        cache.slot(&3, at(3)).set(3).unwrap();
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.slot(&1, at(4)).get(), Some(&1));
        assert_eq!(cache.slot(&2, at(4)).get(), Some(&2));
        assert_eq!(cache.slot(&3, at(4)).get(), Some(&3));
        // At 11.5 s, 1 has expired (at 11 s): it goes, nothing live does.
        let later = t0 + Duration::from_millis(11_500);
        cache.slot(&4, later).set(4).unwrap();
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.slot(&3, later).get(), Some(&3));
        assert_eq!(cache.slot(&2, later).get(), Some(&2));
        assert_eq!(cache.slot(&4, later).get(), Some(&4));
    }

    #[tokio::test]
    async fn a_failed_review_is_not_remembered_and_concurrent_ones_share_a_cell() {
        let mut cache: Cache<u32, u32> = Cache::new(Duration::from_secs(10), 8);
        let now = Instant::now();
        let first = cache.slot(&7, now);
        let failed: Result<&u32, &str> = first.get_or_try_init(|| async { Err("down") }).await;
        assert!(failed.is_err());
        let second = cache.slot(&7, now);
        assert!(Arc::ptr_eq(&first, &second), "one cell per key while live");
        assert_eq!(
            second
                .get_or_try_init(|| async { Ok::<_, &str>(42) })
                .await
                .unwrap(),
            &42
        );
    }
}
