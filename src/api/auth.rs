//! Bearer JWTs (HS256): who the caller is (`sub`), in which role, and for
//! staff which store. `o2ohub token` mints them from the same key the server
//! checks them with. Tokens that verified are remembered (by their whole
//! text, until they expire): a client sends the same token with every
//! request, and verifying it — base64, HMAC, JSON — was a few per cent of a
//! booking's CPU.

use hashlink::LruCache;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use o2ohub_events::{Actor, MerchantId, Role};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use warp::{Filter, Rejection};

use super::problem::Problem;

/// The claims of an o2ohub token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The subject: a consumer, staff, rider or admin id.
    pub sub: String,
    /// The role the token grants.
    pub role: Role,
    /// For staff: the store they act for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<MerchantId>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Their role.
    pub role: Role,
    /// Their subject.
    pub subject: String,
    /// For staff: their store.
    pub merchant: Option<MerchantId>,
}

impl Principal {
    /// The actor recorded on the events this caller causes.
    pub fn actor(&self) -> Actor {
        Actor {
            role: self.role,
            subject: self.subject.clone(),
        }
    }

    /// Refuses callers whose role is not one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let allowed: Vec<&str> = roles.iter().map(Role::as_str).collect();
            Err(Problem::forbidden(format!(
                "this route is for {}; the token's role is {}",
                allowed.join(" or "),
                self.role
            )))
        }
    }

    /// The subject parsed as a UUID-based id.
    pub fn subject_id<T>(
        &self,
        parse: impl Fn(&str) -> Result<T, uuid::Error>,
    ) -> Result<T, Problem> {
        parse(&self.subject)
            .map_err(|_| Problem::forbidden("the token's subject is not an id this route accepts"))
    }
}

/// The signing and checking keys.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Tokens that verified, with their caller and expiry.
    verified: Arc<Mutex<LruCache<String, (Principal, u64)>>>,
}

/// Seconds of clock skew allowed past a token's expiry.
const LEEWAY_SECONDS: u64 = 30;

/// Verified tokens remembered (the least recently used are forgotten).
const VERIFIED_CAPACITY: usize = 16_384;

impl Keys {
    /// Keys from a shared secret (at least 32 bytes).
    pub fn from_secret(secret: &[u8]) -> Self {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            verified: Arc::new(Mutex::new(LruCache::new(VERIFIED_CAPACITY))),
        }
    }

    /// Mints a token valid for `ttl_seconds`.
    pub fn mint(
        &self,
        principal: &Principal,
        ttl_seconds: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let exp = chrono::Utc::now().timestamp().max(0) as u64 + ttl_seconds;
        let claims = Claims {
            sub: principal.subject.clone(),
            role: principal.role,
            merchant: principal.merchant,
            exp,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks a token and returns its caller.
    pub fn check(&self, token: &str) -> Result<Principal, Problem> {
        self.check_at(token, chrono::Utc::now().timestamp().max(0) as u64)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, LruCache<String, (Principal, u64)>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`check`](Self::check) at `now` (seconds since the epoch): a token
    /// seen before answers from memory while it has not expired; any other
    /// is verified in full.
    fn check_at(&self, token: &str, now: u64) -> Result<Principal, Problem> {
        let invalid = |e: jsonwebtoken::errors::Error| {
            Problem::unauthorized(format!("the bearer token is not valid: {e}"))
        };
        if let Some((principal, exp)) = self.verified().get(token) {
            return if now <= exp.saturating_add(LEEWAY_SECONDS) {
                Ok(principal.clone())
            } else {
                Err(invalid(ErrorKind::ExpiredSignature.into()))
            };
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(invalid)?;
        let c = data.claims;
        if c.role == Role::Staff && c.merchant.is_none() {
            return Err(Problem::unauthorized(
                "a staff token must name its merchant",
            ));
        }
        let principal = Principal {
            role: c.role,
            subject: c.sub,
            merchant: c.merchant,
        };
        self.verified()
            .insert(token.to_owned(), (principal.clone(), c.exp));
        Ok(principal)
    }
}

/// Extracts the caller from `Authorization: Bearer <token>`.
pub fn principal() -> impl Filter<Extract = (Principal,), Error = Rejection> + Copy {
    super::with_state()
        .and(warp::header::optional::<String>("authorization"))
        .and_then(|state: super::State, header: Option<String>| async move {
            let header = header.ok_or_else(|| {
                warp::reject::custom(
                    Problem::unauthorized(
                        "send `Authorization: Bearer <token>`; `o2ohub token` mints one",
                    )
                    .field("Authorization"),
                )
            })?;
            let token = header.strip_prefix("Bearer ").ok_or_else(|| {
                warp::reject::custom(
                    Problem::unauthorized("use the Bearer scheme").field("Authorization"),
                )
            })?;
            state.keys.check(token.trim()).map_err(warp::reject::custom)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_keys() -> Keys {
        Keys::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn minted_tokens_check_and_foreign_ones_do_not() {
        let keys = test_keys();
        let staff = Principal {
            role: Role::Staff,
            subject: "s1".into(),
            merchant: Some(MerchantId::new()),
        };
        let token = keys.mint(&staff, 60).unwrap();
        let back = keys.check(&token).unwrap();
        assert_eq!(
            (back.role, back.subject.as_str(), back.merchant),
            (Role::Staff, "s1", staff.merchant)
        );
        let other = Keys::from_secret(b"another secret, another secret!!");
        assert!(other.check(&token).is_err());
        assert!(keys.check("not-a-token").is_err());
        assert!(back.require(&[Role::Admin]).is_err());
        assert!(back.require(&[Role::Staff, Role::Admin]).is_ok());
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let keys = test_keys();
        let rider = Principal {
            role: Role::Rider,
            subject: "r1".into(),
            merchant: None,
        };
        let token = keys.mint(&rider, 60).unwrap();
        let now = chrono::Utc::now().timestamp() as u64;
        assert_eq!(keys.check_at(&token, now).unwrap().subject, "r1");
        assert_eq!(keys.check_at(&token, now).unwrap().subject, "r1");
        let expired = keys.check_at(&token, now + 60 + LEEWAY_SECONDS + 2);
        assert_eq!(expired.unwrap_err().status, 401);
        // A token that never verified is not let in by one that did.
        let mut forged = token.clone();
        forged.pop();
        assert!(keys.check_at(&forged, now).is_err());
    }
}
