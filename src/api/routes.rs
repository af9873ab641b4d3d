//! The route table: every (method, path template) the router serves, as
//! `docs/openapi.yaml` names them. warp filters cannot be listed, so this
//! table is what the rest of the hub asks about routes — the `Allow` header
//! of a 405 — and `tests/openapi.rs` keeps it, the spec and the `warp::path!`
//! filters in this directory equal. A new route goes into all three.

/// Every route: method and path template (`{…}` is one UUID segment).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/merchants/search"),
    ("GET", "/v1/merchants/{merchant_id}/slots"),
    ("POST", "/v1/merchants"),
    ("PUT", "/v1/merchants/{merchant_id}"),
    ("POST", "/v1/merchants/{merchant_id}/pause"),
    ("POST", "/v1/merchants/{merchant_id}/resume"),
    ("POST", "/v1/merchants/{merchant_id}/staff"),
    ("POST", "/v1/riders"),
    ("GET", "/v1/merchants/{merchant_id}/analytics"),
    ("GET", "/v1/supply"),
    ("POST", "/v1/visits"),
    ("POST", "/v1/visits/{visit_id}/reschedule"),
    ("POST", "/v1/visits/{visit_id}/cancel"),
    ("GET", "/v1/me/visits"),
    ("GET", "/v1/me/orders"),
    ("DELETE", "/v1/me"),
    ("GET", "/v1/stores/{merchant_id}/day"),
    ("POST", "/v1/visits/{visit_id}/redeem"),
    ("POST", "/v1/visits/{visit_id}/no-show"),
    ("POST", "/v1/visits/{visit_id}/complete"),
    ("POST", "/v1/orders"),
    ("GET", "/v1/orders/{order_id}"),
    ("POST", "/v1/orders/{order_id}/cancel"),
    ("POST", "/v1/orders/{order_id}/accept"),
    ("POST", "/v1/orders/{order_id}/reject"),
    ("POST", "/v1/orders/{order_id}/ready"),
    ("POST", "/v1/payments/webhook"),
    ("POST", "/v1/riders/me/shift/start"),
    ("POST", "/v1/riders/me/shift/end"),
    ("POST", "/v1/riders/me/positions"),
    ("GET", "/v1/riders/me/board"),
    ("GET", "/v1/riders/me/offers"),
    ("GET", "/v1/riders/me/route"),
    ("POST", "/v1/deliveries/{delivery_id}/accept"),
    ("POST", "/v1/deliveries/{delivery_id}/decline"),
    ("POST", "/v1/deliveries/{delivery_id}/pickup"),
    ("POST", "/v1/deliveries/{delivery_id}/deliver"),
];

/// Whether a request path matches a template: literal segments equal,
/// `{…}` segments are UUIDs (as every path parameter of the API is).
pub fn matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                let ok = if ts.starts_with('{') {
                    uuid::Uuid::parse_str(ps).is_ok()
                } else {
                    ts == ps
                };
                if !ok {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The route serving `method` on `path`: its entry in [`ROUTES`].
pub fn route_of(method: &str, path: &str) -> Option<&'static (&'static str, &'static str)> {
    ROUTES
        .iter()
        .find(|(m, template)| *m == method && matches(template, path))
}

/// The methods served on `path`, for the `Allow` header of a 405
/// (empty when no route has this path).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, template)| matches(template, path))
        .map(|(method, _)| *method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_uuid_segments_only() {
        let id = "0193a5c6-7d2e-7c3b-9a41-2f6e8b1c0d9e";
        assert!(matches(
            "/v1/merchants/{merchant_id}",
            &format!("/v1/merchants/{id}")
        ));
        assert!(!matches(
            "/v1/merchants/{merchant_id}",
            "/v1/merchants/search"
        ));
        assert!(!matches("/v1/merchants/{merchant_id}", "/v1/merchants"));
        assert_eq!(allowed_methods("/v1/merchants/search"), vec!["GET"]);
        assert_eq!(allowed_methods(&format!("/v1/merchants/{id}")), vec!["PUT"]);
        assert_eq!(allowed_methods("/v1/me"), vec!["DELETE"]);
        assert!(allowed_methods("/v1/nowhere").is_empty());
        assert_eq!(
            route_of("POST", &format!("/v1/visits/{id}/redeem")),
            Some(&("POST", "/v1/visits/{visit_id}/redeem"))
        );
        assert_eq!(route_of("GET", "/v1/visits"), None);
        assert_eq!(route_of("POST", "/v1/nowhere"), None);
    }
}
