#!/usr/bin/env python3
"""Checks what kubernetes-validate cannot: the custom resources (Strimzi
KafkaTopic, Prometheus Operator ServiceMonitor and PrometheusRule) against the
required fields and types of their published CRD schemas, and the wiring
between objects of one rendered overlay (a ServiceMonitor selects a Service
with the named port, a ConfigMap a pod uses exists, the HPA's custom metric
is one prometheus-adapter serves).

Usage: check_k8s.py RENDERED.yaml [ADAPTER_VALUES.yaml]
Prints one line per object; exits 1 naming every problem found.
"""

import re
import sys

import yaml

# Kinds whose schemas ship with kubernetes-validate (checked there, strictly).
CORE_KINDS = {
    "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
    "Service", "ServiceAccount", "StatefulSet",
}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The Prometheus Operator's Duration pattern.
DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
TOPIC_SPEC_KEYS = {"topicName", "partitions", "replicas", "config"}
CLEANUP = {"delete", "compact", "compact,delete", "delete,compact"}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_kafka_topic(obj, say):
    if obj["apiVersion"] not in ("kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"):
        say(f"apiVersion {obj['apiVersion']} is not a KafkaTopic version Strimzi serves")
    labels = obj["metadata"].get("labels") or {}
    if not labels.get("strimzi.io/cluster"):
        say("has no strimzi.io/cluster label: no Topic Operator would manage it")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return say("spec is required")
    for key in set(spec) - TOPIC_SPEC_KEYS:
        say(f"spec.{key} is not a KafkaTopic field")
    if "topicName" in spec and not (isinstance(spec["topicName"], str) and TOPIC_NAME.match(spec["topicName"])):
        say(f"spec.topicName {spec['topicName']!r} is not a valid Kafka topic name")
    partitions, replicas = spec.get("partitions"), spec.get("replicas")
    if not (is_int(partitions) and partitions >= 1):
        say("spec.partitions must be an integer of at least 1")
    if not (is_int(replicas) and 1 <= replicas <= 32767):
        say("spec.replicas must be an integer in 1..32767")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        return say("spec.config must be an object")
    for key, value in config.items():
        if not isinstance(value, (str, int, float, bool)):
            say(f"spec.config.{key} must be a scalar")
    retention = config.get("retention.ms")
    if retention is not None and not (is_int(retention) and retention >= -1):
        say("spec.config.retention.ms must be an integer >= -1 (-1 keeps forever)")
    if config.get("cleanup.policy", "delete") not in CLEANUP:
        say(f"spec.config.cleanup.policy {config['cleanup.policy']!r} is not delete/compact")
    isr = config.get("min.insync.replicas")
    if isr is not None and is_int(replicas) and not (is_int(isr) and 1 <= isr <= replicas):
        say(f"min.insync.replicas {isr} must be between 1 and the replicas ({replicas}), or no write would succeed")


def check_service_monitor(obj, say, services):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return say("spec is required")
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return say("spec.selector is required")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        return say("spec.endpoints must list at least one endpoint")
    wanted = selector.get("matchLabels") or {}
    matched = [s for s in services if s["metadata"]["namespace"] == obj["metadata"]["namespace"]
               and all((s["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
    if not matched:
        say(f"selects no Service (matchLabels {wanted})")
    for i, ep in enumerate(endpoints):
        if not isinstance(ep, dict) or not ("port" in ep or "targetPort" in ep):
            say(f"endpoints[{i}] needs port or targetPort")
            continue
        for field in ("interval", "scrapeTimeout"):
            if field in ep and not DURATION.match(str(ep[field])):
                say(f"endpoints[{i}].{field} {ep[field]!r} is not a duration")
        if "path" in ep and not str(ep["path"]).startswith("/"):
            say(f"endpoints[{i}].path must start with /")
        for s in matched:
            names = {p.get("name") for p in s["spec"].get("ports", [])}
            if "port" in ep and ep["port"] not in names:
                say(f"endpoints[{i}].port {ep['port']!r} is not a port of Service {s['metadata']['name']}")


def check_prometheus_rule(obj, say):
    groups = (obj.get("spec") or {}).get("groups")
    if not isinstance(groups, list) or not groups:
        return say("spec.groups must list at least one group")
    names = set()
    for g in groups:
        name = g.get("name") if isinstance(g, dict) else None
        if not name:
            say("every group needs a name")
            continue
        if name in names:
            say(f"group {name!r} appears twice")
        names.add(name)
        for j, rule in enumerate(g.get("rules") or []):
            where = f"group {name} rule {j}"
            if not isinstance(rule.get("expr"), (str, int)) or not str(rule.get("expr")).strip():
                say(f"{where}: expr is required")
            if ("alert" in rule) == ("record" in rule):
                say(f"{where}: exactly one of alert and record")
            if "record" in rule and not METRIC_NAME.match(rule["record"]):
                say(f"{where}: record {rule['record']!r} is not a metric name")
            if "for" in rule and not DURATION.match(str(rule["for"])):
                say(f"{where}: for {rule['for']!r} is not a duration")


def check_wiring(objects, say_for, adapter_metrics):
    config_maps = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "ConfigMap"}
    for o in objects:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        say = say_for(o)
        ns = o["metadata"]["namespace"]
        pod = o["spec"]["template"]["spec"]
        for c in pod.get("containers", []):
            for src in c.get("envFrom", []):
                ref = (src.get("configMapRef") or {}).get("name")
                if ref and (ns, ref) not in config_maps:
                    say(f"container {c['name']} reads ConfigMap {ref}, which this overlay does not create")
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    say(f"{probe} uses port {port!r}, which container {c['name']} does not name")
    for o in objects:
        if o["kind"] != "HorizontalPodAutoscaler":
            continue
        for m in o["spec"].get("metrics", []):
            if m.get("type") == "Pods":
                name = m["pods"]["metric"]["name"]
                if adapter_metrics is not None and name not in adapter_metrics:
                    say_for(o)(f"scales on {name}, which prometheus-adapter's rules do not serve")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    adapter_metrics = None
    if len(sys.argv) == 3:
        with open(sys.argv[2]) as f:
            rules = yaml.safe_load(f)["rules"]["custom"]
        adapter_metrics = {r["name"]["as"] for r in rules}
    problems = []

    def say_for(obj):
        label = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        return lambda msg: problems.append(f"{label}: {msg}")

    for o in objects:
        o.setdefault("metadata", {}).setdefault("namespace", "default")
        if not DNS_SUBDOMAIN.match(o["metadata"].get("name") or ""):
            say_for(o)("metadata.name is not a DNS-1123 subdomain")
    services = [o for o in objects if o.get("kind") == "Service"]
    for o in objects:
        say, kind = say_for(o), o.get("kind")
        before = len(problems)
        if kind == "KafkaTopic":
            check_kafka_topic(o, say)
        elif kind == "ServiceMonitor":
            check_service_monitor(o, say, services)
        elif kind == "PrometheusRule":
            check_prometheus_rule(o, say)
        elif kind not in CORE_KINDS:
            say("is a kind neither kubernetes-validate nor this script checks")
        if len(problems) == before:
            print(f"  ok  {kind}/{o['metadata']['name']}")
    check_wiring(objects, say_for, adapter_metrics)
    if problems:
        print(f"{sys.argv[1]}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  FAIL {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
