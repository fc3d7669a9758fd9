#!/usr/bin/env bash
# Smoke test of the container image (deploy/Dockerfile), built around the
# binary CI has already built and tested, run hardened the way
# deploy/docker-compose.yml runs it:
#
#   bash .ci/image-smoke.sh              # PAYHOOK_BIN=target/debug/payhook by default
#   PAYHOOK_BIN=target/release/payhook bash .ci/image-smoke.sh
#
# The CI machines run Debian 12 as root, with no Docker engine and no container
# registry within reach, but Debian's mirrors are. So the engine is Debian's
# podman 4.3 (rootful, runc, netavark), and debian:bookworm-slim, the
# Dockerfile's runtime base, is made locally with mmdebstrap and imported under
# the name the Dockerfile asks for. That base stays cached between runs (the
# only thing left behind, besides the packages and the podman drop-in below);
# remove it with `podman rmi docker.io/library/debian:bookworm-slim` to make it
# again from the mirror.
#
# Checks: /healthz and /readyz answer 200; a callback signed by Paysera's own
# key (a real test payment, tests/vectors/real/) is answered exactly `OK` and
# its order is paid in SQLite on the named volume (admin API, and the CLI in
# the container); a tampered copy is refused; the image's HEALTHCHECK exists
# and passes; SIGTERM ends the container with exit code 0; a fresh container
# on the same volume still sees the paid order. Any failure stops the script
# with a line starting "FAIL:" and the container's log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BASE_IMAGE=docker.io/library/debian:bookworm-slim
CONF_DROPIN=/etc/containers/containers.conf.d/50-payhook-smoke.conf

# ------------------------------------------------------------------ helpers
fail() { echo "FAIL: $*" >&2; exit 1; }

# Stage timings, printed at the end (also when a stage fails).
declare -a timings=()
stage_name='' stage_start=0
now_ms() { date +%s%3N; }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }  # ms -> "12.3"
stage() {
  stage_end
  stage_name=$1 stage_start=$(now_ms)
  echo "== $1"
}
stage_end() {
  if [[ -n $stage_name ]]; then
    timings+=("$(printf '%6ss  %s' "$(secs $(($(now_ms) - stage_start)))" "$stage_name")")
  fi
  stage_name=''
}
print_timings() {
  stage_end
  ((${#timings[@]})) || return 0
  echo "-- timings ($(basename "$0"))"
  printf '  %s\n' "${timings[@]}"
}

# Without systemd (these machines have none), podman 4.3 cannot arm the
# timer that would run a HEALTHCHECK periodically, and says so on stderr for
# every container with one. The check itself still runs on demand
# (`podman healthcheck run`), which is what this script does; the noise is
# dropped here so that real errors stand out.
podman() {
  command podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
}

# ------------------------------------------------------------- the engine
install_tools() {
  local pkgs=() p
  # netavark + aardvark-dns: container networks with DNS (compose services
  # find each other by name); iptables: netavark's NAT and port forwarding.
  # Rootful podman needs no uidmap or slirp4netns, and the overlay driver
  # is native on ext4, so no fuse-overlayfs either.
  for p in podman runc netavark aardvark-dns iptables mmdebstrap "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
  done
  if ((${#pkgs[@]})); then
    echo "  installing ${pkgs[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >"$work/apt.log" 2>&1 \
      || { tail -n 20 "$work/apt.log" >&2; fail "apt-get could not install ${pkgs[*]}"; }
  fi
}

# A drop-in, merged over Debian's containers.conf, rewritten on every run.
configure_podman() {
  # podman's default rlimits for a container are nofile=1048576 and nproc at
  # kernel.pid_max, and runc fails to set them ("error setting rlimit type 7:
  # operation not permitted") where the hard limit is lower and root lacks
  # CAP_SYS_RESOURCE (so here: nofile 20000). Pin both to what this process
  # may have: nofile to its hard limit; nproc to its hard limit but at most
  # pid_max, because podman itself lowers its own nproc limit to pid_max when
  # it starts and cannot hand a container more than it has.
  local nofile nproc pid_max
  nofile=$(ulimit -Hn)
  [[ $nofile == unlimited ]] && nofile=$(cat /proc/sys/fs/nr_open)
  nproc=$(ulimit -Hu)
  pid_max=$(cat /proc/sys/kernel/pid_max)
  if [[ $nproc == unlimited ]] || ((nproc > pid_max)); then nproc=$pid_max; fi
  mkdir -p "${CONF_DROPIN%/*}"
  cat >"$CONF_DROPIN" <<EOF
# Written by payhook's .ci/image-smoke.sh on every run; safe to delete.
[containers]
# Pinned to what this machine allows (see the script).
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
# podman prefers crun when it is installed; CI uses runc, as Docker does.
runtime = "runc"

[network]
# Named explicitly: netavark gives compose networks DNS, and podman then
# stops validating the CNI example Debian ships (whose plugins are absent).
network_backend = "netavark"
EOF
  echo "  podman $(command podman version --format '{{.Client.Version}}' 2>/dev/null), runc, ulimits nofile=$nofile nproc=$nproc ($CONF_DROPIN)"
}

# debian:bookworm-slim as Debian's own images are made (debuerreotype uses
# minbase too): minbase, merged /usr without the usrmerge package (which
# would pull in perl), and the "slim" path exclusions for docs, man pages
# and locales. Made once, then cached.
ensure_base() {
  if podman image exists "$BASE_IMAGE"; then
    local made_by
    made_by=$(podman image inspect --format '{{index .Labels "org.payhook.smoke.base"}}' "$BASE_IMAGE" 2>/dev/null || true)
    echo "  $BASE_IMAGE cached (${made_by:-not made by this script})"
    return
  fi
  echo "  making $BASE_IMAGE with mmdebstrap (log: $work/mmdebstrap.log)"
  mmdebstrap --variant=minbase --quiet \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm - \
    'deb http://deb.debian.org/debian bookworm main' \
    'deb http://deb.debian.org/debian bookworm-updates main' \
    'deb http://deb.debian.org/debian-security bookworm-security main' \
    2>"$work/mmdebstrap.log" \
  | podman import --quiet \
      --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'LABEL org.payhook.smoke.base=mmdebstrap' \
      - "$BASE_IMAGE" >/dev/null \
  || { tail -n 20 "$work/mmdebstrap.log" >&2; podman rmi -f "$BASE_IMAGE" >/dev/null 2>&1
       fail "could not make $BASE_IMAGE with mmdebstrap (log above)"; }
}

# ---------------------------------------------------------- HTTP, callback
# request URL [CURL ARGS...]: one HTTP request; sets $code and $body.
request() {
  local url=$1; shift
  code=$(curl -sS -m 10 -o "$work/body" -w '%{http_code}' "$@" "$url" 2>/dev/null) || code=000
  body=$(cat "$work/body" 2>/dev/null || true)
  rm -f "$work/body"
}

# The callback both tests send: a real test payment Paysera itself signed
# (published with active_merchant's tests, tests/vectors/real/). payhook
# checks its ss2 against the Paysera key compiled in, so no key file is
# mounted. Sets $project_id, $project_password, $query (the callback's query
# string) and the order it pays: $orderid, $amount, $currency.
load_vector() {
  local vector=tests/vectors/real/v16-paid-test-usd-ss1-ss2.json
  read -r project_id project_password < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["secrets"]
print(s["project_id"], s["project_password"])' "$vector")
  query=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["raw_query"])' "$vector")
  orderid=26 amount=100 currency=USD  # what its data says (data_decoded_query)
}

# The engine and the base image: what both smoke tests start with. $work must
# be set (a scratch directory for logs).
prepare() {
  [[ $(id -u) -eq 0 ]] || fail "run as root: rootful podman, apt-get and mmdebstrap need it"
  stage "engine: packages, podman configuration"
  install_tools "$@"
  configure_podman
  stage "base image $BASE_IMAGE"
  ensure_base
}

# .ci/compose-smoke.sh sources this file for the functions above; the image
# test itself starts here.
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then return 0; fi

# ------------------------------------------------------------- the image
bin=${PAYHOOK_BIN:-target/debug/payhook}
[[ -x $bin ]] || fail "no payhook binary at $bin: build it (cargo build --bin payhook) or set PAYHOOK_BIN"

# Names unique to this run, so two runs (or a real deployment) never meet.
tag=localhost/payhook-smoke:$$
ctr=payhook-smoke-$$
vol=payhook-smoke-data-$$

work=$(mktemp -d /tmp/payhook-image-smoke.XXXXXX)
cleanup() {
  local rc=$?
  set +e
  stage_end  # the failed stage's time, without the clean-up's
  if ((rc != 0)) && command podman container exists "$ctr" 2>/dev/null; then
    echo "-- last lines of the container's log" >&2
    podman logs --tail 30 "$ctr" >&2
  fi
  # Everything this run made; the base image stays (see the top).
  podman rm -f -t 0 "$ctr" >/dev/null 2>&1
  podman volume rm -f "$vol" >/dev/null 2>&1
  podman rmi -f "$tag" >/dev/null 2>&1
  rm -rf "$work"
  print_timings
  if ((rc == 0)); then echo "image smoke test passed"; else echo "image smoke test FAILED (exit $rc)" >&2; fi
}
trap cleanup EXIT

prepare

stage "build the image around $bin (--target prebuilt)"
# The context is a directory holding only the binary: nothing else is sent to
# the builder, target/ least of all. --format docker: the OCI image format
# has no HEALTHCHECK, and podman would drop it.
mkdir "$work/context"
cp "$bin" "$work/context/payhook"
podman build --format docker --target prebuilt -f deploy/Dockerfile -t "$tag" \
  "$work/context" >"$work/build.log" 2>&1 \
  || { tail -n 30 "$work/build.log" >&2; fail "podman build failed (log above)"; }
echo "  $tag, $(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec) (log: build.log)"

# A real deployment's configuration, not demo mode (which listens on loopback
# only), for the project of the signed callback.
load_vector

# Secrets go to podman by name (-e NAME) from the environment, never on a
# command line.
export PAYSERA_PROJECT_PASSWORD=$project_password
PAYHOOK_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export PAYHOOK_ADMIN_TOKEN
env_args=(
  -e PAYSERA_PROJECT_ID="$project_id" -e PAYSERA_PROJECT_PASSWORD
  -e PAYHOOK_ADMIN_TOKEN
  # The callback is a test payment (test=1); without this it is answered OK
  # but only journaled as test_ignored, and the order stays unpaid.
  -e PAYHOOK_ALLOW_TEST_PAYMENTS=true
)
# The hardening of docker-compose.yml (x-payhook-hardening), and its volume.
hardening=(
  --read-only --tmpfs /tmp:size=16m,mode=1777
  --cap-drop=ALL --security-opt no-new-privileges
  -v "$vol:/var/lib/payhook"
)

stage "start hardened: read-only, tmpfs /tmp, no capabilities, volume $vol"
podman volume create "$vol" >/dev/null
# Ports published on loopback, the host side picked by podman: nothing on
# this machine is disturbed, whatever else listens on 8080.
podman run -d --name "$ctr" "${hardening[@]}" "${env_args[@]}" \
  -p 127.0.0.1::8080 -p 127.0.0.1::8081 "$tag" >/dev/null
exited() { echo "the container exited during start-up (exit code $(podman inspect --format '{{.State.ExitCode}}' "$ctr"))"; }
pub=$(podman port "$ctr" 8080/tcp 2>/dev/null) && adm=$(podman port "$ctr" 8081/tcp 2>/dev/null) || fail "$(exited)"
pub=http://$pub adm=http://$adm

for _ in $(seq 60); do
  request "$pub/healthz"
  [[ $code == 200 ]] && break
  [[ $(podman inspect --format '{{.State.Running}}' "$ctr") == true ]] || fail "$(exited)"
  sleep 0.5
done
[[ $code == 200 ]] || fail "/healthz answered $code, not 200, after 30 s"
request "$pub/readyz"
[[ $code == 200 ]] || fail "/readyz answered $code ($body), not 200"
uid=$(podman exec "$ctr" id -u) || fail "podman exec id -u failed"
[[ $uid == 10001 ]] || fail "payhook runs as uid $uid, not 10001"
echo "  /healthz 200, /readyz 200, running as uid $uid"

stage "a genuine signed Paysera callback, on SQLite in the volume"
auth=(-H "Authorization: Bearer $PAYHOOK_ADMIN_TOKEN")
request "$adm/api/v1/orders/$orderid" -X PUT "${auth[@]}" -H 'Content-Type: application/json' \
  -d "{\"amount\": $amount, \"currency\": \"$currency\"}"
[[ $code == 201 || $code == 200 ]] || fail "registering order $orderid answered $code: $body"
request "$pub/paysera/callback?$query"
[[ $code == 200 && $body == OK ]] || fail "the signed callback was answered $code '$body', not 200 'OK'"
echo "  callback -> $code $body"
# One character of the signature changed: must be refused, never OK.
tampered=${query/&ss2=f/&ss2=g}
[[ $tampered != "$query" ]] || fail "could not tamper with the vector's ss2"
request "$pub/paysera/callback?$tampered"
[[ $code == 400 && $body != OK ]] || fail "a tampered callback was answered $code '$body', not 400"
echo "  tampered -> $code $body"
request "$adm/api/v1/orders/$orderid" "${auth[@]}"
state=$(jq -r '.state + " " + ([.callbacks[].outcome] | join(","))' <<<"$body")
[[ $code == 200 && $state == "paid fulfilled" ]] \
  || fail "GET /api/v1/orders/$orderid: $code, state and outcomes '$state', expected 'paid fulfilled'"
echo "  admin API: order $orderid $state"
# The operator's CLI in the container reads the same SQLite file.
cli=$(podman exec "$ctr" payhook orders show --json "$orderid" | jq -r .order.state) \
  || fail "payhook orders show $orderid failed in the container"
[[ $cli == paid ]] || fail "payhook orders show $orderid in the container says '$cli', not paid"
echo "  payhook orders show (in the container): $cli"

stage "HEALTHCHECK of the image"
hc=$(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$tag" 2>/dev/null || true)
[[ $hc == *healthz* ]] || fail "the image has no HEALTHCHECK on /healthz (was it built with --format docker?): $hc"
podman healthcheck run "$ctr" || fail "the image's HEALTHCHECK fails in the running container"
health=$(podman inspect --format '{{.State.Health.Status}}' "$ctr")
[[ $health == healthy ]] || fail "health status '$health' after the check, not healthy"
echo "  $health"

stage "SIGTERM: podman stop, exit code 0"
# The compose file's stop_grace_period (30 s) before podman sends SIGKILL;
# a SIGKILL would show as exit code 137.
t0=$(now_ms)
podman stop -t 30 "$ctr" >/dev/null
took=$(secs $(($(now_ms) - t0)))
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr")
[[ $exit_code == 0 ]] || fail "after SIGTERM the container exited with $exit_code, not 0 (in ${took}s)"
echo "  exited 0 after ${took}s"

stage "the order is still paid, read by a fresh container from the volume"
again=$(podman run --rm "${hardening[@]}" "${env_args[@]}" "$tag" orders show --json "$orderid" | jq -r .order.state) \
  || fail "payhook orders show $orderid in a fresh container failed"
[[ $again == paid ]] || fail "a fresh container on $vol sees order $orderid '$again', not paid"
echo "  $again"
