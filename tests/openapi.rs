//! The router and `docs/openapi.yaml` list the same routes, both ways.
//!
//! warp filters cannot be listed, so the router's side is read twice: from
//! the source (every `warp::path!` in `src/api` with the method filter that
//! follows it) and over a real socket (every route of the spec is matched by
//! the router — answered by a handler, not by the router's `no-route` 404 or
//! a 405 — and every other method on a spec path is a 405). A route added to
//! the router without the spec, or to the spec without the router, fails.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

use o2ohub_events::Role;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// `/v1/merchants/{merchant_id}/pause` → `/v1/merchants/{}/pause`.
fn normalize(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn spec() -> Value {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml"))
            .expect("docs/openapi.yaml exists");
    serde_norway::from_str(&text).expect("docs/openapi.yaml is valid YAML")
}

/// (METHOD, path template) of every operation in the spec.
fn spec_routes(spec: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                routes.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// (METHOD, normalized path) of every `warp::path!` in `src/api/*.rs`, with
/// the first method filter after it.
fn source_routes() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let code: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !code.contains("warp::path(") && !code.contains("warp::path::param"),
            "{}: build routes with `warp::path!` so tests/openapi.rs can read them",
            path.display()
        );
        let mut rest = code.as_str();
        while let Some(at) = rest.find("warp::path!(") {
            rest = &rest[at + "warp::path!(".len()..];
            let close = rest.find(')').expect("warp::path! closes");
            let segments: Vec<String> = rest[..close]
                .split('/')
                .map(|s| {
                    let s = s.trim();
                    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        Some(literal) => literal.to_owned(),
                        None => "{}".to_owned(),
                    }
                })
                .collect();
            let method = METHODS
                .iter()
                .filter_map(|m| rest.find(&format!("warp::{m}()")).map(|i| (i, m)))
                .min()
                .map(|(_, m)| m.to_uppercase())
                .unwrap_or_else(|| panic!("{}: a route without a method filter", path.display()));
            routes.insert((method, format!("/{}", segments.join("/"))));
        }
    }
    routes
}

#[test]
fn the_source_and_the_spec_list_the_same_routes() {
    let spec: BTreeSet<_> = spec_routes(&spec())
        .into_iter()
        .map(|(m, p)| (m, normalize(&p)))
        .collect();
    let source = source_routes();
    assert!(
        source.len() >= 30,
        "the scan found too few routes: {source:?}"
    );
    let undocumented: Vec<_> = source.difference(&spec).collect();
    let unserved: Vec<_> = spec.difference(&source).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes in src/api but not in docs/openapi.yaml: {undocumented:?}\n\
         routes in docs/openapi.yaml but not in src/api: {unserved:?}"
    );
}

#[test]
fn the_route_table_is_the_spec() {
    let spec = spec_routes(&spec());
    let table: BTreeSet<(String, String)> = o2ohub::api::routes::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        table, spec,
        "src/api/routes.rs ROUTES and docs/openapi.yaml differ"
    );
}

#[test]
fn every_operation_answers_problems_and_declares_its_statuses() {
    let spec = spec();
    for (method, path) in spec_routes(&spec) {
        let op = &spec["paths"][&path][method.to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success response"
        );
        assert!(
            !responses.contains_key("default"),
            "{method} {path}: list statuses, not `default`"
        );
        let secured = op.get("security").is_none_or(|s| s != &json!([]));
        if secured {
            assert!(
                responses.contains_key("401"),
                "{method} {path}: a bearer route must document 401"
            );
        }
        if method != "GET" {
            let has_key = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| {
                    p["$ref"] == "#/components/parameters/IdempotencyKey"
                        || p["name"] == "O2O-Signature"
                })
            });
            let is_erase = path == "/v1/me";
            assert!(
                has_key || is_erase,
                "{method} {path}: document the Idempotency-Key header"
            );
        }
    }
}

/// A concrete request path for a template: every parameter a fresh UUID.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_router_serves_every_spec_route_and_nothing_else_on_its_paths() {
    let hub = support::Hub::start().await;
    let admin = hub.token(Role::Admin, "ops", None);
    let routes = spec_routes(&spec());
    let paths: BTreeSet<&String> = routes.iter().map(|(_, p)| p).collect();
    let mut failures = Vec::new();
    for path in paths {
        let url = concrete(path);
        for m in METHODS {
            let method = m.to_uppercase();
            let body = (m != "get").then(|| json!({}));
            let answer = hub.call(&method, &url, Some(&admin), body.as_ref()).await;
            let documented = routes.contains(&(method.clone(), path.clone()));
            let routed = answer.problem_type() != Some("no-route") && answer.status != 405;
            if documented && !routed {
                failures.push(format!(
                    "{method} {path}: the router does not serve it ({} {})",
                    answer.status, answer.body
                ));
            }
            if !documented && answer.status != 405 {
                failures.push(format!(
                    "{method} {path}: undocumented, yet answered {} {}",
                    answer.status, answer.body
                ));
            }
            if answer.status == 405 {
                let allow = answer
                    .headers
                    .get("allow")
                    .map(|v| v.to_str().unwrap().to_owned());
                let served: Vec<&str> = routes
                    .iter()
                    .filter(|(_, p)| p == path)
                    .map(|(m, _)| m.as_str())
                    .collect();
                if allow.as_deref() != Some(served.join(", ").as_str()) {
                    failures.push(format!(
                        "{method} {path}: 405 with Allow {allow:?}, serves {served:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn an_unknown_path_is_the_routers_not_found() {
    let hub = support::Hub::start().await;
    let admin = hub.token(Role::Admin, "ops", None);
    let answer = hub.call("GET", "/v1/nowhere", Some(&admin), None).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.problem_type(), Some("no-route"));
}
