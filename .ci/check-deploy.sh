#!/usr/bin/env bash
# Validate everything under deploy/: Prometheus rules, rule unit tests and
# config, YAML and JSON syntax, Kubernetes and compose structure, the
# Dockerfile's essentials, the systemd unit, and the high-availability
# examples in deploy/ha/ (Patroni, CloudNativePG, HAProxy).
#
#   bash .ci/check-deploy.sh                       # check (CI)
#   bash .ci/check-deploy.sh --write-prometheusrule
#       regenerate deploy/k8s/prometheusrule.yaml from
#       deploy/prometheus/alert-rules.yml after editing the rules
#
# Installs promtool (Debian package "prometheus") and PyYAML if missing.
# Runs every check, prints each result, exits 1 if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
D=deploy
P=$D/prometheus

failures=()
pass() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; failures+=("$*"); }
skip() { printf '  skip  %s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

# check [-q] LABEL CMD...: run CMD, show its output indented (with -q only
# when it fails), record pass/fail under LABEL.
check() {
  local quiet=0
  if [[ $1 == -q ]]; then quiet=1; shift; fi
  local label=$1; shift
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [[ -n $out ]] && ((rc != 0 || !quiet)); then printf '%s\n' "$out" | sed 's/^/        /'; fi
  if ((rc == 0)); then pass "$label"; else fail "$label (exit $rc)"; fi
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1
  fi
}

# --------------------------------------------------------------- tooling
section "tooling"
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "  PyYAML not found; installing"
  python3 -m pip install -q pyyaml 2>/dev/null \
    || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null; }
fi
echo "  python3 $(python3 -c 'import sys, yaml; print(sys.version.split()[0], "/ PyYAML", yaml.__version__)')"

# All structural checks live in one Python program; it takes a mode.
pycheck() {
  python3 - "$@" <<'PY'
import json, pathlib, re, sys
import yaml

mode = sys.argv[1]
D = pathlib.Path("deploy")
errors = []
def err(msg): errors.append(msg)
def load_all(p): return [d for d in yaml.safe_load_all(p.read_text()) if d is not None]

def prometheusrule_doc():
    rules = yaml.safe_load((D / "prometheus/alert-rules.yml").read_text())
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "payhook", "labels": {"app.kubernetes.io/name": "payhook"}},
        "spec": {"groups": rules["groups"]},
    }

def run():
    if mode == "write-prometheusrule":
        class Dumper(yaml.SafeDumper): pass
        def str_rep(d, s):
            style = "|" if "\n" in s else None
            return d.represent_scalar("tag:yaml.org,2002:str", s, style=style)
        Dumper.add_representer(str, str_rep)
        out = D / "k8s/prometheusrule.yaml"
        out.write_text(
            "# GENERATED from deploy/prometheus/alert-rules.yml - do not edit.\n"
            "# Regenerate: bash .ci/check-deploy.sh --write-prometheusrule\n"
            "# (CI fails if the two drift apart.) Your Prometheus resource's\n"
            "# ruleSelector must match its labels.\n"
            + yaml.dump(prometheusrule_doc(), Dumper=Dumper, sort_keys=False, width=100))
        print(f"wrote {out}")

    elif mode == "yaml":
        files = sorted(p for p in D.rglob("*") if p.suffix in (".yml", ".yaml"))
        for p in files:
            try:
                n = len(load_all(p))
                print(f"parsed {p} ({n} document{'s' if n != 1 else ''})")
            except yaml.YAMLError as e:
                err(f"{p}: {e}")
        if not files: err("no YAML files found under deploy/")

    elif mode == "alert-coverage":
        rules = yaml.safe_load((D / "prometheus/alert-rules.yml").read_text())
        tests = yaml.safe_load((D / "prometheus/alert-rules.test.yml").read_text())
        alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
        firing, quiet = set(), set()
        for t in tests["tests"]:
            for c in t.get("alert_rule_test", []):
                (firing if c.get("exp_alerts") else quiet).add(c["alertname"])
        for a in sorted(alerts - firing): err(f"alert {a} has no test case where it fires")
        if not quiet: err("no test case asserts that an alert stays quiet")
        for a in sorted((firing | quiet) - alerts): err(f"test refers to unknown alert {a}")
        for g in rules["groups"]:
            for r in g["rules"]:
                if "alert" not in r: continue
                sev = r.get("labels", {}).get("severity")
                if sev not in ("page", "ticket"): err(f"{r['alert']}: severity must be page or ticket, not {sev!r}")
                for k in ("summary", "description", "runbook"):
                    if not r.get("annotations", {}).get(k): err(f"{r['alert']}: missing annotation {k}")
        print(f"{len(alerts)} alerts, all fire in a test; {len(quiet)} alerts also tested quiet")

    elif mode == "metric-names":
        # Catch typos: every payhook_* name used must be one payhook exports.
        known = {"payhook_callbacks_total", "payhook_callbacks_rejected_total",
                 "payhook_callback_duration_seconds", "payhook_fulfilments_total",
                 "payhook_alerts_sent_total", "payhook_alerts_failed_total",
                 "payhook_db_errors_total", "payhook_build_info",
                 "payhook_orders_missing_callback",
                 "payhook_notifications_total", "payhook_outbox_pending",
                 "payhook_outbox_oldest_pending_seconds",
                 "payhook_notification_duration_seconds",
                 "payhook_db_sync_standbys", "payhook_db_replication_lag_seconds"}
        suffixes = ("_bucket", "_sum", "_count")
        files = [D / "prometheus/alert-rules.yml", D / "prometheus/alert-rules.test.yml",
                 D / "grafana/dashboard.json", D / "k8s/prometheusrule.yaml"]
        for p in files:
            for name in sorted(set(re.findall(r"\bpayhook_[a-z0-9_]+", p.read_text()))):
                base = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
                if name not in known and base not in known:
                    err(f"{p}: unknown metric {name}")
        print(f"payhook_* names in {len(files)} files match the exported metrics")

    elif mode == "prometheusrule-sync":
        p = D / "k8s/prometheusrule.yaml"
        if not p.exists():
            err(f"{p} missing; run: bash .ci/check-deploy.sh --write-prometheusrule")
        elif yaml.safe_load(p.read_text()) != prometheusrule_doc():
            err(f"{p} differs from alert-rules.yml; run: bash .ci/check-deploy.sh --write-prometheusrule")
        else:
            print(f"{p} matches alert-rules.yml")

    elif mode == "k8s":
        kinds = {}
        for p in sorted((D / "k8s").glob("*.yaml")):
            for doc in load_all(p):
                if doc.get("kind") == "Kustomization":
                    for r in doc.get("resources", []):
                        if not (D / "k8s" / r).exists(): err(f"{p}: resource {r} does not exist")
                    continue
                for k in ("apiVersion", "kind", "metadata"):
                    if k not in doc: err(f"{p}: document without {k}")
                if not doc.get("metadata", {}).get("name"): err(f"{p}: {doc.get('kind')} without metadata.name")
                kinds.setdefault(doc.get("kind"), []).append(doc)
        for k in ("Deployment", "Service", "ServiceMonitor", "PodDisruptionBudget", "Secret", "ConfigMap", "PrometheusRule"):
            if k not in kinds: err(f"no {k} in deploy/k8s")
        if errors: raise SystemExit("\n".join(errors))
        dep = kinds["Deployment"][0]
        spec = dep["spec"]["template"]["spec"]
        sel = dep["spec"]["selector"]["matchLabels"]
        tmpl = dep["spec"]["template"]["metadata"]["labels"]
        if any(tmpl.get(k) != v for k, v in sel.items()): err("Deployment selector does not match template labels")
        ctr = {c["name"]: c for c in spec["containers"]}["payhook"]
        ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
        if ports != {"http": 8080, "admin": 8081}: err(f"container ports {ports}")
        if ctr["readinessProbe"]["httpGet"]["path"] != "/readyz": err("readinessProbe is not /readyz")
        if ctr["livenessProbe"]["httpGet"]["path"] != "/healthz": err("livenessProbe is not /healthz")
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False):
                err(f"container {c['name']}: needs readOnlyRootFilesystem and no privilege escalation")
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            vols = {v["name"] for v in spec.get("volumes", [])}
            if mounts - vols: err(f"container {c['name']}: mounts undefined volumes {mounts - vols}")
            refs = {e.get("secretRef", e.get("configMapRef", {})).get("name") for e in c.get("envFrom", [])}
            names = {d["metadata"]["name"] for d in kinds["Secret"] + kinds["ConfigMap"]}
            if refs - names: err(f"container {c['name']}: envFrom refers to unknown {refs - names}")
        if not spec["securityContext"].get("runAsNonRoot"): err("pod securityContext.runAsNonRoot not set")
        for svc in kinds["Service"]:
            if any(svc["spec"]["selector"].get(k) != v for k, v in svc["spec"]["selector"].items() if k in tmpl) \
               or not set(svc["spec"]["selector"]) <= set(tmpl):
                err(f"Service {svc['metadata']['name']} selector does not match the pods")
            for port in svc["spec"]["ports"]:
                if port["targetPort"] not in ports: err(f"Service {svc['metadata']['name']}: unknown targetPort {port['targetPort']}")
        sm = kinds["ServiceMonitor"][0]["spec"]
        admin = [s for s in kinds["Service"] if all(s["metadata"].get("labels", {}).get(k) == v for k, v in sm["selector"]["matchLabels"].items())]
        if len(admin) != 1: err(f"ServiceMonitor selects {len(admin)} Services, expected 1")
        elif sm["endpoints"][0]["port"] not in {p["name"] for p in admin[0]["spec"]["ports"]}: err("ServiceMonitor port not on the selected Service")
        elif admin[0]["metadata"]["labels"].get(sm.get("jobLabel")) != "payhook": err("ServiceMonitor would not produce job=\"payhook\"")
        pdb = kinds["PodDisruptionBudget"][0]["spec"]
        if any(tmpl.get(k) != v for k, v in pdb["selector"]["matchLabels"].items()): err("PDB selector does not match the pods")
        for s in kinds["Secret"]:
            for k, v in s.get("stringData", {}).items():
                if "CHANGE-ME" not in v: err(f"secret.example value {k} is not a CHANGE-ME placeholder")
        print("k8s: " + ", ".join(f"{k} x{len(v)}" for k, v in sorted(kinds.items())) + "; selectors, ports, probes, securityContext consistent")

    elif mode == "compose":
        c = yaml.safe_load((D / "docker-compose.yml").read_text())
        svcs = c.get("services", {})
        for s in ("postgres", "payhook", "prometheus"):
            if s not in svcs: err(f"compose: service {s} missing")
        if errors: raise SystemExit("\n".join(errors))
        ph = svcs["payhook"]
        ctx = (D / ph["build"]["context"]).resolve()
        if not (ctx / ph["build"]["dockerfile"]).is_file(): err("compose: payhook build dockerfile not found")
        if ph["depends_on"]["postgres"]["condition"] != "service_healthy": err("compose: payhook must wait for postgres healthy")
        if "healthcheck" not in svcs["postgres"]: err("compose: postgres has no healthcheck")
        if not any(str(p).startswith("127.0.0.1:") and str(p).endswith(":8081") for p in ph["ports"]):
            err("compose: admin port 8081 must be published on 127.0.0.1 only")
        for v in svcs["prometheus"].get("volumes", []):
            src = v.split(":")[0]
            if src.startswith(".") and not (D / src).exists(): err(f"compose: prometheus mount source {src} missing")
        print(f"compose: services {', '.join(svcs)}; build context, dependencies, ports and mounts consistent")

    elif mode == "grafana":
        d = json.loads((D / "grafana/dashboard.json").read_text())
        ids = [p["id"] for p in d["panels"]]
        if len(ids) != len(set(ids)): err("grafana: duplicate panel ids")
        dsvars = {v["name"] for v in d["templating"]["list"] if v["type"] == "datasource"}
        for p in d["panels"]:
            if p["type"] == "row": continue
            uid = p.get("datasource", {}).get("uid", "")
            if uid.strip("${}") not in dsvars: err(f"grafana: panel {p['title']!r} does not use the datasource variable")
            if not p.get("targets"): err(f"grafana: panel {p['title']!r} has no queries")
        print(f"grafana: schemaVersion {d['schemaVersion']}, {len(ids)} panels, datasource via ${next(iter(dsvars))}")

    elif mode == "dockerfile":
        text = (D / "Dockerfile").read_text()
        lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.lstrip().startswith("#")]
        froms = [l for l in lines if l.upper().startswith("FROM ")]
        users = [l.split(None, 1)[1] for l in lines if l.upper().startswith("USER ")]
        if len(froms) < 2: err(f"Dockerfile: {len(froms)} FROM stage(s), expected a multi-stage build")
        if not users: err("Dockerfile: no USER")
        elif users[-1].split(":")[0] in ("root", "0"): err("Dockerfile: final USER is root")
        if not any(l.upper().startswith("HEALTHCHECK ") for l in lines): err("Dockerfile: no HEALTHCHECK")
        exposed = {w for l in lines if l.upper().startswith("EXPOSE ") for w in l.split()[1:]}
        if not {"8080", "8081"} <= exposed: err(f"Dockerfile: EXPOSE {sorted(exposed)}, expected 8080 8081")
        print(f"Dockerfile: {len(froms)} stages, USER {users[-1] if users else '-'}, HEALTHCHECK, EXPOSE {' '.join(sorted(exposed))}")

    # deploy/ha: payhook answers OK only for a commit a standby has flushed,
    # so every example must keep that true (docs/ha.md).
    elif mode == "patroni":
        configs = [(p, yaml.safe_load(p.read_text())) for p in sorted((D / "ha/patroni").glob("*.y*ml"))]
        configs = [(p, c) for p, c in configs if isinstance(c, dict) and "scope" in c]
        if not configs: err("no Patroni configuration (a YAML file with scope:) in deploy/ha/patroni")
        for p, c in configs:
            before = len(errors)
            dcs = c["bootstrap"]["dcs"]
            # YAML 1.1 reads a bare on/yes as true: a string would be "quoted true", not the flag.
            for k in ("synchronous_mode", "synchronous_mode_strict"):
                if dcs.get(k) is not True: err(f"{p}: bootstrap.dcs.{k} must be true, not {dcs.get(k)!r}")
            if dcs.get("synchronous_node_count", 1) < 1: err(f"{p}: synchronous_node_count below 1")
            pg = dcs.get("postgresql", {})
            if pg.get("use_pg_rewind") is not True: err(f"{p}: bootstrap.dcs.postgresql.use_pg_rewind must be true")
            params = {**c.get("postgresql", {}).get("parameters", {}), **pg.get("parameters", {})}
            sc = {True: "on", False: "off"}.get(params.get("synchronous_commit", "on"), params.get("synchronous_commit"))
            if sc not in ("on", "remote_apply"): err(f"{p}: synchronous_commit {sc!r} does not wait for the standby's flush")
            if "synchronous_standby_names" in params: err(f"{p}: synchronous_standby_names is Patroni's to set")
            if params.get("wal_level") not in ("replica", "logical"): err(f"{p}: wal_level {params.get('wal_level')!r}")
            bin_dir = c["postgresql"].get("bin_dir", "")
            if not re.fullmatch(r"/usr/lib/postgresql/\d+/bin", bin_dir): err(f"{p}: bin_dir {bin_dir!r} is not Debian's")
            if not any(l.split()[:2] in (["host", "replication"], ["hostssl", "replication"])
                       for l in c["postgresql"].get("pg_hba", [])):
                err(f"{p}: postgresql.pg_hba has no replication line")
            if len(errors) == before: print(f"{p}: synchronous_mode and synchronous_mode_strict, synchronous_commit={sc}, pg_rewind, {bin_dir}")

    elif mode == "cnpg":
        clusters = [(p, d) for p in sorted((D / "ha/cloudnativepg").glob("*.y*ml"))
                    for d in load_all(p) if d.get("kind") == "Cluster"]
        if not clusters: err("no CloudNativePG Cluster in deploy/ha/cloudnativepg")
        for p, d in clusters:
            before = len(errors)
            name = d["metadata"]["name"]
            if d.get("apiVersion") != "postgresql.cnpg.io/v1": err(f"{p}: {name}: apiVersion {d.get('apiVersion')!r}")
            spec = d["spec"]
            n = spec.get("instances", 1)
            if n < 2: err(f"{p}: {name}: instances {n}, a synchronous standby needs at least 2")
            sync = spec["postgresql"]["synchronous"]
            if sync.get("dataDurability") != "required": err(f"{p}: {name}: synchronous.dataDurability must be required")
            if sync.get("method") not in ("any", "first"): err(f"{p}: {name}: synchronous.method {sync.get('method')!r}")
            if not 1 <= sync.get("number", 0) < n: err(f"{p}: {name}: synchronous.number must be at least 1 and below instances")
            params = spec["postgresql"].get("parameters", {})
            if params.get("synchronous_commit", "on") not in ("on", "remote_apply"):
                err(f"{p}: {name}: synchronous_commit {params['synchronous_commit']!r} (a quoted \"on\" or \"remote_apply\")")
            if "synchronous_standby_names" in params: err(f"{p}: {name}: synchronous_standby_names is the operator's to set")
            initdb = spec.get("bootstrap", {}).get("initdb", {})
            if (initdb.get("database"), initdb.get("owner")) != ("payhook", "payhook"):
                err(f"{p}: {name}: bootstrap.initdb must create database payhook owned by payhook")
            if len(errors) == before: print(f"{p}: Cluster {name}, {n} instances, {sync['method']} {sync['number']}, dataDurability {sync['dataDurability']}")

    elif mode == "haproxy":
        for p in sorted((D / "ha").rglob("haproxy.cfg")):
            before = len(errors)
            lines = [l.split("#")[0].split() for l in p.read_text().splitlines()]
            lines = [l for l in lines if l]
            has = lambda *words: any(l[: len(words)] == list(words) for l in lines)
            if not (has("option", "httpchk", "GET", "/primary") or has("http-check", "send", "meth", "GET", "uri", "/primary")):
                err(f"{p}: no health check on Patroni's GET /primary")
            if not has("http-check", "expect", "status", "200"): err(f"{p}: no http-check expect status 200")
            servers = [l for l in lines if l[0] == "server"]
            if not servers: err(f"{p}: no server lines")
            ds = [w for l in lines if l[0] == "default-server" for w in l]
            for s in servers:
                if "check" not in s: err(f"{p}: server {s[1]} is not health-checked")
                if "shutdown-sessions" not in s + ds: err(f"{p}: server {s[1]}: no on-marked-down shutdown-sessions")
            if len(errors) == before: print(f"{p}: {len(servers)} servers, leader only (GET /primary = 200), sessions cut when marked down")
        if not list((D / "ha").rglob("haproxy.cfg")): err("no haproxy.cfg under deploy/ha")

    elif mode == "ha-env":
        for p in sorted((D / "ha").rglob("*.env.example")):
            before = len(errors)
            urls = re.findall(r"^#?\s*DATABASE_URL=(\S+)", p.read_text(), re.M)
            if not urls: err(f"{p}: no DATABASE_URL")
            for u in urls:
                if "target_session_attrs=read-write" not in u: err(f"{p}: {u.split('@')[-1]}: without target_session_attrs=read-write")
            if len(errors) == before: print(f"{p}: {len(urls)} DATABASE_URL examples, all with target_session_attrs=read-write")

    else:
        raise SystemExit(f"unknown mode {mode}")

try:
    run()
except (OSError, yaml.YAMLError, json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as e:
    err(f"{type(e).__name__}: {e}")

if errors:
    print("\n".join(errors))
    sys.exit(1)
PY
}

if [[ ${1:-} == --write-prometheusrule ]]; then
  pycheck write-prometheusrule
  exit 0
fi

if ! command -v promtool >/dev/null; then
  echo "  promtool not found; installing Debian package 'prometheus'"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
echo "  $(promtool --version 2>&1 | head -n1)"

# ------------------------------------------------------------ prometheus
section "prometheus"
check "promtool check rules $P/alert-rules.yml" promtool check rules "$P/alert-rules.yml"
check "promtool test rules $P/alert-rules.test.yml" promtool test rules "$P/alert-rules.test.yml"
# rule_files in prometheus.yml is relative to the config file, so this
# resolves the same file the container mounts next to it.
check "promtool check config $P/prometheus.yml" promtool check config "$P/prometheus.yml"
check "every alert has a firing test case" pycheck alert-coverage
check "metric names match what payhook exports" pycheck metric-names
check "k8s PrometheusRule in sync with alert-rules.yml" pycheck prometheusrule-sync

# ------------------------------------------------------------------ yaml
section "yaml"
check "all YAML under $D/ parses (safe_load_all)" pycheck yaml
check "kubernetes manifests are consistent" pycheck k8s

# Schema validation of the core manifests (the CRDs ServiceMonitor and
# PrometheusRule have no bundled schema). Strict: unknown fields are errors,
# which is what catches misspelt keys. 1.28 is the oldest Kubernetes these
# manifests target. Kept in its own venv so the system Python stays clean.
KV_VERSION=1.37.0
kv_venv=${XDG_CACHE_HOME:-$HOME/.cache}/payhook-deploy-check/kv-$KV_VERSION
if [[ ! -x $kv_venv/bin/kubernetes-validate ]]; then
  echo "  installing kubernetes-validate $KV_VERSION into $kv_venv"
  { python3 -m venv "$kv_venv" && "$kv_venv/bin/pip" install -q "kubernetes-validate==$KV_VERSION"; } >/dev/null 2>&1 \
    || { rm -rf "$kv_venv"; echo "  (could not install kubernetes-validate)"; }
fi
k8s_core=()
for f in "$D"/k8s/*.yaml; do
  grep -q '^kind: \(Kustomization\|ServiceMonitor\|PrometheusRule\)$' "$f" || k8s_core+=("$f")
done
check -q "kubernetes-validate --strict (k8s 1.28): ${k8s_core[*]##*/}" \
  "$kv_venv/bin/kubernetes-validate" --strict --quiet -k 1.28.0 "${k8s_core[@]}"
check "docker-compose.yml is consistent" pycheck compose

# --------------------------------------------------------------- grafana
section "grafana"
check "python3 -m json.tool $D/grafana/dashboard.json" \
  bash -c "python3 -m json.tool '$D/grafana/dashboard.json' >/dev/null"
check "dashboard panels use the datasource variable" pycheck grafana

# ------------------------------------------------------------ dockerfile
section "dockerfile"
check "$D/Dockerfile: multi-stage, non-root USER, HEALTHCHECK, EXPOSE" pycheck dockerfile

# -------------------------------------------------------------------- ha
# The YAML under deploy/ha/ is parsed with the rest above; these hold the
# examples to synchronous replication that never degrades silently.
section "ha"
check "$D/ha/patroni: synchronous_mode, synchronous_mode_strict, remote-durable commits, pg_rewind" pycheck patroni
check "$D/ha/cloudnativepg: Cluster with >= 2 instances, synchronous number >= 1, dataDurability required" pycheck cnpg
check "$D/ha haproxy.cfg: leader only, by Patroni's GET /primary" pycheck haproxy
check "$D/ha env examples: DATABASE_URL with target_session_attrs=read-write" pycheck ha-env
if command -v haproxy >/dev/null; then
  for f in "$D"/ha/*/haproxy.cfg; do
    check -q "haproxy -c -f $f" haproxy -c -f "$f"
  done
else
  skip "haproxy not installed; $D/ha/*/haproxy.cfg not parsed by haproxy -c"
fi

# --------------------------------------------------------------- systemd
section "systemd"
if command -v systemd-analyze >/dev/null; then
  # verify insists that ExecStart binaries exist; payhook is not installed
  # on the CI host, so check a copy pointing at /bin/true instead.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  sed 's#/usr/local/bin/payhook#/bin/true#g' "$D/systemd/payhook.service" >"$tmp/payhook.service"
  # verify exits 0 on bad values ("Failed to parse ..., ignoring"), so any
  # diagnostic about the unit counts as a failure.
  verify_unit() {
    local out
    out=$(systemd-analyze verify "$1" 2>&1) || { echo "$out"; return 1; }
    if grep -q 'payhook\.service' <<<"$out"; then echo "$out"; return 1; fi
  }
  check "systemd-analyze verify $D/systemd/payhook.service" verify_unit "$tmp/payhook.service"
  if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
    # --threshold is in tenths: 20 = an overall exposure of 2.0 ("OK").
    check -q "systemd-analyze security: exposure <= 2.0" \
      systemd-analyze security --offline=yes --threshold=20 --no-pager "$tmp/payhook.service"
    systemd-analyze security --offline=yes --no-pager "$tmp/payhook.service" 2>/dev/null \
      | grep -o 'Overall exposure level.*' | sed 's/^/        /' || true
  fi
else
  skip "systemd-analyze not available; unit not verified"
fi

# --------------------------------------------------------------- summary
echo
if ((${#failures[@]})); then
  printf 'FAILED: %d check(s)\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
echo "All deploy checks passed."
