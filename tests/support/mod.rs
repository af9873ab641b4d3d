//! A hub served on port 0 over a fresh data directory, and a client that
//! mints tokens for it: the harness of the route-level tests (`openapi`,
//! `authz`).

#![allow(dead_code)] // each test binary uses a different part

use o2ohub::api::auth::{Keys, Principal};
use o2ohub_events::{MerchantId, Role};
use reqwest::StatusCode;
use serde_json::Value;

/// A running hub.
pub struct Hub {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Signs tokens the hub accepts.
    pub keys: Keys,
    /// The payment provider's secret.
    pub payments: Vec<u8>,
    /// One client, one connection pool.
    pub client: reqwest::Client,
    /// The served hub, for preparing state through the command layer.
    pub state: std::sync::Arc<o2ohub::api::AppState>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers and the body as JSON (`Null` when not JSON).
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The problem `type` without its base URI, if the body is a problem.
    pub fn problem_type(&self) -> Option<&str> {
        self.body["type"]
            .as_str()
            .and_then(|t| t.rsplit('/').next())
    }
}

impl Hub {
    /// Starts a hub on a fresh data directory.
    pub async fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, state, server) =
            o2ohub::serve::start("127.0.0.1:0".parse().unwrap(), dir.path(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        tokio::spawn(server);
        let secrets = o2ohub::secrets::Secrets::load(dir.path()).unwrap();
        Hub {
            base: format!("http://{addr}"),
            keys: Keys::from_secret(&secrets.jwt),
            payments: secrets.payments.clone(),
            client: reqwest::Client::new(),
            state,
            _stop: stop,
            _dir: dir,
        }
    }

    /// A token for `role` and `subject` (staff name their store).
    pub fn token(&self, role: Role, subject: &str, merchant: Option<MerchantId>) -> String {
        let principal = Principal {
            role,
            subject: subject.into(),
            merchant,
        };
        self.keys.mint(&principal, 600).unwrap()
    }

    /// Sends one request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let stream = headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        // An event stream never ends: its status and headers are the answer.
        let body = if stream {
            Value::Null
        } else {
            resp.json().await.unwrap_or(Value::Null)
        };
        Answer {
            status,
            headers,
            body,
        }
    }
}
