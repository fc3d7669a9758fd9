#!/usr/bin/env bash
# Smoke test of the compose stack (deploy/docker-compose.yml): PostgreSQL, the
# migrate service, payhook and Prometheus, as the compose file defines them,
# with the environment deploy/.env.example describes.
#
#   bash .ci/compose-smoke.sh            # PAYHOOK_BIN=target/debug/payhook by default
#
# Its job is to catch a broken compose file, .env template or migration
# service, not to test podman. So, on these registry-less machines (see
# .ci/image-smoke.sh, whose engine set-up and base image it shares):
#   - payhook:local is built around the prebuilt binary (--target prebuilt),
#     and the stack is started with --no-build (the compose file's build would
#     need the rust image from a registry);
#   - postgres:15 and prom/prometheus:v2.55.1 are stand-ins built from Debian's
#     packages (deploy/standins/), tagged with those names for the run; an
#     image of that name that is not a stand-in is used as it is;
#   - Debian's podman-compose 1.0.3 ignores depends_on conditions
#     (service_healthy, service_completed_successfully), and `up SERVICE`
#     starts (or restarts) every service SERVICE depends on, --no-deps or
#     not. So the script has podman-compose create every container as the
#     compose file defines it (`up --no-start`), then starts them itself in
#     the order, and on the conditions, depends_on names: postgres until its
#     compose healthcheck passes; migrate until it exits 0; payhook; prometheus.
# Checks: migrate exits 0; payhook's /readyz is 200 on PostgreSQL and the
# image's HEALTHCHECK passes in the compose service; a callback
# signed by Paysera's key is answered OK and its order is paid in PostgreSQL;
# Prometheus loaded the alert rules and scrapes payhook (up{job="payhook"} 1).
#
# Cleans up everything it made: containers, volumes, network, payhook:local and
# the stand-ins. Only the base image stays cached (as with image-smoke.sh).
# The compose file publishes fixed host ports (8080, 127.0.0.1:8081,
# 127.0.0.1:9090); the test stops at once if any of them is taken.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# fail, stage, print_timings, the podman wrapper, request, load_vector, prepare.
source .ci/image-smoke.sh

bin=${PAYHOOK_BIN:-target/debug/payhook}
[[ -x $bin ]] || fail "no payhook binary at $bin: build it (cargo build --bin payhook) or set PAYHOOK_BIN"

PAYHOOK_IMAGE=localhost/payhook:local  # the compose file's `image: payhook:local`
declare -A STANDINS=(
  [postgres]=docker.io/library/postgres:15
  [prometheus]=docker.io/prom/prometheus:v2.55.1
)
proj=payhook-smoke-$$  # the project name: prefix of every container, volume, network
work=$(mktemp -d /tmp/payhook-compose-smoke.XXXXXX)
compose_file=$work/deploy/docker-compose.yml
# podman-compose 1.0.3 names containers PROJECT_SERVICE_N.
container() { echo "${proj}_$1_1"; }
pc() { podman-compose -p "$proj" -f "$compose_file" "$@" >>"$work/compose.log" 2>&1; }

made_images=()    # tags this run made, removed at the end
restore_tags=()   # "ID NAME": an image of ours took NAME from ID; given back
failed_service=''
# service_fail SERVICE MESSAGE: fail, showing that service's log.
service_fail() { failed_service=$1; fail "$2"; }
cleanup() {
  local rc=$?
  set +e
  stage_end  # the failed stage's time, without the clean-up's
  if ((rc != 0)) && [[ -n $failed_service ]]; then
    echo "-- last lines of $(container "$failed_service")'s log" >&2
    podman logs --tail 30 "$(container "$failed_service")" >&2
  elif ((rc != 0)) && [[ -s $work/compose.log ]]; then
    echo "-- last lines of podman-compose's output" >&2
    tail -n 15 "$work/compose.log" >&2
  fi
  # compose down first, then everything still labelled with the project (a
  # container or volume compose down does not know of, a half-made network).
  [[ -f $compose_file ]] && pc down -v -t 5
  local filter=label=io.podman.compose.project=$proj
  podman ps -aq --filter "$filter" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
  podman volume ls -q --filter "$filter" | xargs -r podman volume rm -f >/dev/null 2>&1
  podman network ls -q --filter "$filter" | xargs -r podman network rm -f >/dev/null 2>&1
  ((${#made_images[@]})) && podman rmi -f "${made_images[@]}" >/dev/null 2>&1
  local r
  for r in "${restore_tags[@]}"; do podman tag $r >/dev/null 2>&1; done
  rm -rf "$work"
  print_timings
  if ((rc == 0)); then echo "compose smoke test passed"; else echo "compose smoke test FAILED (exit $rc)" >&2; fi
}
trap cleanup EXIT

prepare podman-compose

stage "host ports the compose file publishes"
for port in 8080 8081 9090; do
  if [[ -n $(ss -Hltn "sport = :$port") ]]; then
    fail "port $port is in use on this host ($(ss -Hltnp "sport = :$port" | grep -o 'users:.*' | head -n1)); the compose file publishes it"
  fi
done
echo "  8080, 8081, 9090 free"

# tag_ours ID NAME: NAME now means our image; whatever it meant before comes back afterwards.
tag_ours() {
  local old
  old=$(podman image inspect --format '{{.Id}}' "$2" 2>/dev/null || true)
  [[ -n $old ]] && restore_tags+=("$old $2")
  podman tag "$1" "$2"
  made_images+=("$2")
}
# build NAME LOG ARGS...: podman build, its output in the log; sets $built (the image id).
build() {
  local name=$1 log=$2; shift 2
  podman build --format docker --iidfile "$work/$log.iid" "$@" >"$work/$log" 2>&1 \
    || { tail -n 30 "$work/$log" >&2; fail "podman build of $name failed (log above)"; }
  built=$(cat "$work/$log.iid")
}

stage "build $PAYHOOK_IMAGE around $bin (--target prebuilt)"
mkdir "$work/context"
cp "$bin" "$work/context/payhook"
build payhook payhook-build.log --target prebuilt -f deploy/Dockerfile "$work/context"
tag_ours "$built" "$PAYHOOK_IMAGE"
echo "  $PAYHOOK_IMAGE"

for svc in postgres prometheus; do
  name=${STANDINS[$svc]}
  stage "stand-in $name (deploy/standins/$svc)"
  if podman image exists "$name" \
     && [[ -z $(podman image inspect --format '{{index .Labels "org.payhook.smoke.standin"}}' "$name" | sed 's/<no value>//') ]]; then
    echo "  $name is here and is not a stand-in: used as it is"
    continue
  fi
  build "$name" "$svc-build.log" "deploy/standins/$svc"
  tag_ours "$built" "$name"
  echo "  $name <- $(podman image inspect --format '{{index .Labels "org.payhook.smoke.standin"}}' "$name")"
done

stage "the compose project, with deploy/.env from deploy/.env.example"
# A copy of deploy/, so that the .env the compose file reads (for ${...} and
# env_file) is this test's, never a deploy/.env someone keeps in the checkout.
cp -r deploy "$work/deploy"
rm -f "$work/deploy/.env"
# The project of the Paysera-signed test payment (load_vector, image-smoke.sh).
load_vector
hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
pg_password=$(hex 24) admin_token=$(hex 24)
# Fill in every CHANGE-ME the template has; no SMTP (no mail leaves a smoke
# test); test payments allowed, because the signed callback is one.
(umask 077; sed \
  -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$pg_password/" \
  -e "s/^PAYSERA_PROJECT_ID=.*/PAYSERA_PROJECT_ID=$project_id/" \
  -e "s/^PAYSERA_PROJECT_PASSWORD=.*/PAYSERA_PROJECT_PASSWORD=$project_password/" \
  -e "s/^PAYHOOK_ADMIN_TOKEN=.*/PAYHOOK_ADMIN_TOKEN=$admin_token/" \
  -e "s/^PAYHOOK_ALLOW_TEST_PAYMENTS=.*/PAYHOOK_ALLOW_TEST_PAYMENTS=true/" \
  -e "s/^SMTP_URL=/# SMTP_URL=/" \
  deploy/.env.example >"$work/deploy/.env")
if grep -n '^[^#]*CHANGE-ME' "$work/deploy/.env"; then
  fail "deploy/.env.example has a CHANGE-ME value this script does not fill in (above)"
fi
echo "  project $proj, compose file $compose_file"

stage "podman-compose up --no-start: every container, as the compose file defines it"
# Not -d: 1.0.3 would pass it on to `podman create`, which has no -d. It does
# not exit non-zero when a podman command fails either, hence the check.
pc up --no-build --no-start || true
for svc in postgres migrate payhook prometheus; do
  podman container exists "$(container "$svc")" || fail "podman-compose did not create $(container "$svc")"
done
podman ps -a --filter "label=io.podman.compose.project=$proj" --format '  {{.Names}}  ({{.Image}} {{.Command}})'

# start SERVICE: start its container. Its conmon keeps podman's stderr and
# writes to it when the container ends, so that goes to the log too.
start() {
  podman start "$(container "$1")" >/dev/null 2>>"$work/compose.log" \
    || service_fail "$1" "podman start $(container "$1") failed"
}

stage "postgres: start, until the compose file's healthcheck passes"
start postgres
pg=$(container postgres)
# `podman healthcheck run` runs the compose file's own test (pg_isready over
# TCP); 60 s covers its start_period and retries.
for _ in $(seq 120); do
  podman healthcheck run "$pg" >/dev/null 2>&1 && break
  [[ $(podman inspect --format '{{.State.Running}}' "$pg") == true ]] || service_fail postgres "postgres exited during start-up"
  sleep 0.5
done
podman healthcheck run "$pg" >/dev/null 2>&1 || service_fail postgres "postgres is not healthy after 60 s"
echo "  $(podman exec "$pg" pg_isready -h 127.0.0.1 -U payhook -d payhook)"

stage "migrate: start, until it exits"
start migrate
migrate_exit=$(timeout 120 podman wait "$(container migrate)") || service_fail migrate "migrate did not finish within 120 s"
[[ $migrate_exit == 0 ]] || service_fail migrate "migrate exited with $migrate_exit, not 0"
psql() { podman exec "$pg" psql -U payhook -d payhook -Atc "$1"; }
echo "  exit 0; $(psql 'SELECT count(*) FROM __diesel_schema_migrations') migrations in PostgreSQL"

stage "payhook: start, /readyz 200 on PostgreSQL"
start payhook
ph=$(container payhook)
for _ in $(seq 60); do
  request http://127.0.0.1:8080/readyz
  [[ $code == 200 ]] && break
  [[ $(podman inspect --format '{{.State.Running}}' "$ph") == true ]] || service_fail payhook "payhook exited during start-up"
  sleep 0.5
done
[[ $code == 200 ]] || service_fail payhook "/readyz answered $code ($body), not 200, after 30 s"
db=$(podman exec "$ph" printenv DATABASE_URL)
[[ $db == postgres://payhook:*@postgres:5432/payhook ]] || service_fail payhook "payhook's DATABASE_URL is not the compose PostgreSQL"
podman healthcheck run "$ph" >/dev/null || service_fail payhook "the image's HEALTHCHECK fails in the compose service"
echo "  /readyz $code $body, HEALTHCHECK healthy (DATABASE_URL postgres://payhook:***@postgres:5432/payhook)"

stage "a genuine signed Paysera callback, stored in PostgreSQL"
auth=(-H "Authorization: Bearer $admin_token")
request "http://127.0.0.1:8081/api/v1/orders/$orderid" -X PUT "${auth[@]}" -H 'Content-Type: application/json' \
  -d "{\"amount\": $amount, \"currency\": \"$currency\"}"
[[ $code == 201 || $code == 200 ]] || service_fail payhook "registering order $orderid answered $code: $body"
request "http://127.0.0.1:8080/paysera/callback?$query"
[[ $code == 200 && $body == OK ]] || service_fail payhook "the signed callback was answered $code '$body', not 200 'OK'"
state=$(psql "SELECT state FROM orders WHERE project_id = '$project_id' AND orderid = '$orderid'")
[[ $state == paid ]] || service_fail payhook "order $orderid is '$state' in PostgreSQL, not paid"
echo "  callback -> $code $body; order $orderid $state in PostgreSQL"

stage "prometheus: start, rules loaded, scraping payhook"
start prometheus
prom=http://127.0.0.1:9090
# The first scrape comes within one scrape_interval (15 s) of the start.
health=''
for _ in $(seq 90); do
  request "$prom/api/v1/targets?state=active"
  if [[ $code == 200 ]]; then
    health=$(jq -r '[.data.activeTargets[] | select(.labels.job == "payhook") | .health] | join(",")' <<<"$body")
    [[ $health == up ]] && break
  fi
  [[ $(podman inspect --format '{{.State.Running}}' "$(container prometheus)") == true ]] \
    || service_fail prometheus "prometheus exited during start-up"
  sleep 0.5
done
[[ $health == up ]] || service_fail prometheus "Prometheus' payhook target is '${health:-missing}' after 45 s, not up ($body)"
request "$prom/api/v1/query" --get --data-urlencode 'query=up{job="payhook"}'
up=$(jq -r '.data.result[0].value[1] // "none"' <<<"$body")
[[ $up == 1 ]] || service_fail prometheus "up{job=\"payhook\"} is $up, not 1"
request "$prom/api/v1/rules"
rules=$(jq '[.data.groups[].rules[]] | length' <<<"$body")
((rules > 0)) || service_fail prometheus "Prometheus loaded no rules from alert-rules.yml"
echo "  target payhook:8081 $health, up{job=\"payhook\"} = $up, $rules rules loaded"
