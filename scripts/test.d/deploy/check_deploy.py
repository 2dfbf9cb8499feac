"""Checks of the deployment files that need more than a schema (scripts/test.d/10-deploy-files.sh).

    python check_deploy.py compose deploy/compose.yaml
    python check_deploy.py chart deploy/helm/user-service VALUES.yaml...

`compose`: every file the Compose file mounts or builds from exists.
`chart`: for each values file, the chart lints clean (strict) and renders with the real Helm
engine; every rendered manifest is valid against the Kubernetes schemas; every pod runs as
non-root with a read-only root filesystem, no privilege escalation and all capabilities
dropped; the termination grace covers the shutdown delay and drain; probes are /health and
/ready; no secret is rendered into a manifest; the PrometheusRule carries exactly the rules
of deploy/prometheus/alerts.yml.
"""

from __future__ import annotations

import os
import sys

import yaml

FAILURES: list[str] = []

# Variables that hold secrets: they may only come from a Secret, never a literal value.
SECRET_VARS = {
    "DATABASE_URL", "DATABASE_READ_URL", "REDIS_URL", "TOKEN_ENCRYPTION_KEYS",
    "CLERK_WEBHOOK_SECRET", "CLERK_SECRET_KEY", "WEBHOOK_SUBSCRIBERS",
}


def fail(msg: str) -> None:
    FAILURES.append(msg)
    print(f"FAIL {msg}", file=sys.stderr)


def check_compose(path: str) -> None:
    base = os.path.dirname(os.path.abspath(path))
    doc = yaml.safe_load(open(path))
    for name, svc in doc["services"].items():
        build = svc.get("build")
        if build:
            ctx = os.path.join(base, build.get("context", "."))
            dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            for p in (ctx, dockerfile):
                if not os.path.exists(p):
                    fail(f"compose service {name}: build path {p} does not exist")
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")):
                target = os.path.normpath(os.path.join(base, source))
                if not os.path.exists(target):
                    fail(f"compose service {name}: mounted file {source} does not exist")
                else:
                    print(f"ok   compose {name}: {source}")
            elif source and source not in (doc.get("volumes") or {}):
                fail(f"compose service {name}: named volume {source} is not declared")


def pod_specs(manifest: dict) -> list[dict]:
    kind = manifest.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [manifest["spec"]["template"]["spec"]]
    if kind == "CronJob":
        return [manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def check_pod(where: str, spec: dict) -> None:
    psc = spec.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        fail(f"{where}: pod securityContext.runAsNonRoot is not true")
    if psc.get("runAsUser", 0) == 0:
        fail(f"{where}: pod runs as uid 0 (runAsUser unset or 0)")
    if spec.get("automountServiceAccountToken") is not False:
        fail(f"{where}: the service account token is mounted (the service needs no API access)")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        cw = f"{where} container {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(f"{cw}: root filesystem is not read-only")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(f"{cw}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
            fail(f"{cw}: capabilities are not all dropped")
        if sc.get("runAsUser") == 0 or sc.get("privileged"):
            fail(f"{cw}: runs privileged or as root")
        for e in c.get("env", []):
            if e["name"] in SECRET_VARS and "valueFrom" not in e:
                fail(f"{cw}: secret {e['name']} is a literal value, not a secretKeyRef")
        env = {e["name"]: e for e in c.get("env", []) if "value" in e}
        delay = int(env.get("SHUTDOWN_DELAY_SECONDS", {}).get("value", "0"))
        drain = int(env.get("SHUTDOWN_TIMEOUT_SECONDS", {}).get("value", "30"))
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if "restartPolicy" not in spec or spec["restartPolicy"] == "Always":
            if grace < delay + drain:
                fail(f"{cw}: terminationGracePeriodSeconds {grace} < shutdown delay {delay} + drain {drain}")
        if c["name"] == "api":
            live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
            ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
            if (live, ready) != ("/health", "/ready"):
                fail(f"{cw}: liveness {live} / readiness {ready}, want /health and /ready")
            rp = c["readinessProbe"]
            noticed = rp.get("periodSeconds", 10) * rp.get("failureThreshold", 3)
            if delay < noticed:
                fail(f"{cw}: shutdown delay {delay}s is shorter than readiness needs to notice ({noticed}s)")


def check_chart(chart_dir: str, values_files: list[str]) -> None:
    import helm_python as helm
    import kubernetes_validate

    alerts = yaml.safe_load(open(os.path.join(chart_dir, "files", "alerts.yml")))
    kube_version = os.environ.get("KUBE_VERSION", "1.30.0")
    chart = helm.Chart.load(chart_dir)
    for vf in values_files:
        values = yaml.safe_load(open(vf)) or {}
        label = os.path.basename(vf)
        report = helm.lint(chart_dir, values, strict=True, namespace="users",
                           kube_version=f"v{kube_version}")
        for m in report.get("messages", []):
            # 1 = info ("icon is recommended"); warnings fail under strict.
            if m["severity"] >= 2:
                fail(f"{label}: helm lint: {m['path']}: {m['error']}")
        for e in report.get("errors", []):
            fail(f"{label}: helm lint: {e}")
        rendered = chart.render(values, name="user-service", namespace="users", is_install=True)
        kinds: list[str] = []
        for path, text in sorted(rendered.items()):
            if not path.endswith((".yaml", ".yml")):
                continue
            for manifest in yaml.safe_load_all(text):
                if not manifest:
                    continue
                kind = manifest["kind"]
                kinds.append(kind)
                where = f"{label}: {kind}/{manifest['metadata']['name']}"
                if kind == "Secret" or kind == "ConfigMap":
                    fail(f"{where}: the chart renders a {kind} (secrets only by reference)")
                if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
                    # Custom resources: kubernetes-validate has no schema for them.
                    if kind == "PrometheusRule" and manifest["spec"]["groups"] != alerts["groups"]:
                        fail(f"{where}: rules differ from deploy/prometheus/alerts.yml")
                    if kind == "ServiceMonitor" and manifest["spec"].get("jobLabel") != "app.kubernetes.io/name":
                        fail(f"{where}: job label is not app.kubernetes.io/name (alerts select job=\"user-service\")")
                else:
                    try:
                        kubernetes_validate.validate(manifest, kube_version, strict=True)
                    except kubernetes_validate.ValidationError as e:
                        fail(f"{where}: invalid against Kubernetes {kube_version}: {e.message} at {'.'.join(map(str, e.path))}")
                for spec in pod_specs(manifest):
                    check_pod(where, spec)
        print(f"ok   {label}: {len(kinds)} manifests ({', '.join(sorted(set(kinds)))})")


def main() -> int:
    mode, *args = sys.argv[1:]
    if mode == "compose":
        check_compose(args[0])
    elif mode == "chart":
        check_chart(args[0], args[1:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if FAILURES:
        print(f"{len(FAILURES)} deployment check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
