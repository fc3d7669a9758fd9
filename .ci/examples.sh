#!/usr/bin/env bash
# The shop-side examples (examples/shop/) against a live payhook, one language
# at a time: a fresh payhook (embedded SQLite in a temp dir, loopback only, an
# admin token, a throw-away gateway key) whose notifications go to the
# example's receiver; the example registers two orders; genuine paid callbacks,
# signed like Paysera signs them, are answered OK; the receiver must verify
# both notifications with the language's Standard Webhooks library and reject
# the same notification tampered; the example's feed reader must page the
# events with after/next_after, and resume from its cursor.
#
#   bash .ci/examples.sh
#   PAYHOOK_BIN=target/release/payhook bash .ci/examples.sh
#   EXAMPLES_LANGS="python" bash .ci/examples.sh
#   EXAMPLES_KEEP=1 bash .ci/examples.sh      # keep the temp dir (logs, copies)
#
# Installs what is missing: python3-venv and `standardwebhooks` (pip, in a venv
# in the temp dir), Debian's nodejs and npm and the npm package
# `standardwebhooks`, Debian's php-cli and composer and the Composer package
# `standard-webhooks/standard-webhooks`. Python and Node must pass
# (EXAMPLES_REQUIRED overrides); PHP is skipped, and says so, when Composer's
# registry cannot be reached, unless STANDARDWEBHOOKS_PHP_SRC names the
# library's `src/` directory (libraries/php/src of its repository).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${PAYHOOK_BIN:-target/debug/payhook}
langs=${EXAMPLES_LANGS:-python node php}
required=${EXAMPLES_REQUIRED:-python node}
started=$(date +%s)

[[ -x $bin ]] || { echo "FAIL: no payhook binary at $bin (cargo build --bin payhook, or set PAYHOOK_BIN)" >&2; exit 1; }
bin=$(realpath "$bin")

work=$(mktemp -d /tmp/payhook-examples.XXXXXX)
pids=()
stop() { # stop PID: TERM, then KILL after 5 s; only processes this script started
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${pids[@]}"; do stop "$pid"; done
  if [[ -n ${EXAMPLES_KEEP:-} ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

lang=setup
logs=()
fail() {
  local log
  echo "FAIL [$lang]: $*" >&2
  for log in "${logs[@]}"; do
    [[ -s $log ]] || continue
    echo "---- last lines of $(basename "$log")" >&2
    tail -n 25 "$log" >&2
  done
  exit 1
}
say() { echo "  $*"; }

# wait_for SECONDS WHAT CMD...: until CMD succeeds, or fail naming WHAT.
wait_for() {
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out after ${seconds}s waiting for $what"
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
in_log() { grep -qF -- "$2" "$1"; }
# delivered ID: payhook recorded the event's 2xx (it does so after the answer).
delivered() {
  curl -fsS -m 2 -H "Authorization: Bearer $token" "$PAYHOOK_ADMIN_URL/api/v1/events/$1" | grep -q '"state":"delivered"'
}

apt_updated=
apt_install() {
  [[ $(id -u) == 0 ]] || { echo "  cannot install $* (not root)"; return 1; }
  export DEBIAN_FRONTEND=noninteractive
  [[ -n $apt_updated ]] || { apt-get update -qq >/dev/null && apt_updated=1; }
  echo "  apt-get install $*"
  apt-get install -y -qq "$@" >"$work/apt.log" 2>&1 || { tail -n 5 "$work/apt.log"; return 1; }
}

echo "== tools"
for tool in curl openssl python3; do
  command -v $tool >/dev/null || apt_install $tool || fail "$tool is missing and could not be installed"
done

# Standard library helpers: free ports; a recorder that forwards payhook's
# notifications to the example's receiver unchanged and keeps a copy of each
# (so the tamper checks change a real notification, not one signed here); and
# the replay of such a copy, as sent or changed.
cat >"$work/helper.py" <<'EOF'
import json, pathlib, re, socket, sys, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

def post(url, body, headers):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code

def record(port, target, outdir):
    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k: v for k, v in self.headers.items()
                       if k.lower().startswith("webhook-") or k.lower() == "content-type"}
            try:
                status = post(target, body, headers)
            except OSError:
                status = 502
            name = re.sub(r"[^0-9A-Za-z_-]", "_", self.headers.get("webhook-id", "none"))
            copy = {"headers": headers, "body": body.decode(), "status": status}
            (pathlib.Path(outdir) / f"{name}.json").write_text(json.dumps(copy))
            self.send_response(status)
            self.end_headers()
        def log_message(self, *args):
            pass
    HTTPServer(("127.0.0.1", int(port)), Recorder).serve_forever()

def replay(path, url, change):
    copy = json.loads(pathlib.Path(path).read_text())
    headers = {k.lower(): v for k, v in copy["headers"].items()}
    body = copy["body"]
    if change == "body":  # what a forger is after: the amount
        body, n = re.subn(r'"amount":\d+', '"amount":1', body, count=1)
        assert n == 1, body
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
    elif change == "unsigned":
        del headers["webhook-signature"]
    else:
        assert change == "none", change
    print(post(url, body.encode(), headers))

if sys.argv[1] == "ports":  # N free ports, all different
    sockets = [socket.socket() for _ in range(int(sys.argv[2]))]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    print(" ".join(str(s.getsockname()[1]) for s in sockets))
elif sys.argv[1] == "record":
    record(*sys.argv[2:])
else:
    replay(*sys.argv[2:])
EOF
helper() { python3 "$work/helper.py" "$@"; }

# The gateway: a throw-away key pair and project, configured in payhook as a
# real project would be (PAYSERA_PROJECT_ID, _PASSWORD, PAYSERA_PUBLIC_KEY_FILE).
project=424242
password=$(openssl rand -hex 16)
token=$(openssl rand -hex 24)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/gateway.pem" 2>/dev/null
openssl pkey -in "$work/gateway.pem" -pubout -out "$work/gateway-public.pem"
secret=$("$bin" notify-secret)
[[ $secret == whsec_* ]] || fail "payhook notify-secret printed no whsec_ secret"

# callback ORDERID AMOUNT CURRENCY REQUESTID: a paid callback signed as
# Paysera signs one (data = url-safe base64 of the fields, ss1 = md5(data +
# password), ss3 = RSA-SHA256 of data), sent to payhook; prints "STATUS BODY".
# The order ids used here need no escaping in a query.
callback() {
  local fields data ss1 ss3 answer
  fields="projectid=$project&orderid=$1&amount=$2&currency=$3&payment=hanza&country=LT"
  fields+="&status=1&test=0&payamount=$2&paycurrency=$3&version=1.6&requestid=$4"
  data=$(printf %s "$fields" | base64 -w0 | tr '+/' '-_')
  ss1=$(printf %s%s "$data" "$password" | md5sum | cut -d' ' -f1)
  ss3=$(printf %s "$data" | openssl dgst -sha256 -sign "$work/gateway.pem" | base64 -w0 | tr '+/' '-_')
  answer=$(curl -sS -m 10 -w ' %{http_code}' "$public/paysera/callback?data=${data//=/%3D}&ss1=$ss1&ss3=${ss3//=/%3D}")
  echo "${answer##* } ${answer% *}"
}

# Each language's examples, copied to the temp dir with their library beside
# them (a venv, node_modules, vendor/), so the work tree stays untouched.
app=$work/app
cp -r examples/shop "$app"

setup_python() {
  if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
    if ! { apt_install python3-venv && python3 -m venv --clear "$work/venv"; }; then echo "  python3 -m venv does not work"; return 1; fi
  fi
  "$work/venv/bin/pip" install -q --disable-pip-version-check -r "$app/python/requirements.txt" || return 1
  say "standardwebhooks $("$work/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("standardwebhooks"))') (PyPI) on $("$work/venv/bin/python" --version)"
}
setup_node() {
  command -v node >/dev/null || apt_install nodejs || return 1
  command -v npm >/dev/null || apt_install npm || return 1
  (cd "$app/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  say "standardwebhooks $(node -p 'require(process.argv[1]).version' "$app/node/node_modules/standardwebhooks/package.json") (npm) on node $(node --version)"
}
setup_php() {
  command -v php >/dev/null || apt_install php-cli || return 1
  if [[ -n ${STANDARDWEBHOOKS_PHP_SRC:-} ]]; then
    [[ -f $STANDARDWEBHOOKS_PHP_SRC/Webhook.php ]] || { echo "  no Webhook.php in STANDARDWEBHOOKS_PHP_SRC=$STANDARDWEBHOOKS_PHP_SRC"; return 1; }
    # What Composer's autoloader would do for this one PSR-4 package.
    mkdir -p "$app/php/vendor"
    cat >"$app/php/vendor/autoload.php" <<EOF
<?php
spl_autoload_register(function (\$class) {
    if (str_starts_with(\$class, 'StandardWebhooks\\\\')) {
        require '$(realpath "$STANDARDWEBHOOKS_PHP_SRC")/' . str_replace('\\\\', '/', substr(\$class, 17)) . '.php';
    }
});
EOF
    say "standard-webhooks from STANDARDWEBHOOKS_PHP_SRC=$STANDARDWEBHOOKS_PHP_SRC on PHP $(php -r 'echo PHP_VERSION;')"
    return 0
  fi
  command -v composer >/dev/null || apt_install composer || return 1
  if ! (cd "$app/php" && COMPOSER_ALLOW_SUPERUSER=1 timeout 120 composer install --no-interaction --no-progress --quiet) >"$work/composer.log" 2>&1; then
    echo "  composer install failed (Composer's registry unreachable from here?): $(grep -m1 -iE 'error|fail|could not' "$work/composer.log" || tail -n1 "$work/composer.log")"
    return 1
  fi
  say "standard-webhooks/standard-webhooks $(cd "$app/php" && COMPOSER_ALLOW_SUPERUSER=1 composer show standard-webhooks/standard-webhooks 2>/dev/null | awk '$1 == "versions" {print $NF}') (Composer) on PHP $(php -r 'echo PHP_VERSION;')"
}

# How each language's examples are run.
register() {
  case $lang in
    python) "$work/venv/bin/python" "$app/python/register_order.py" "$@" ;;
    node) node "$app/node/register-order.js" "$@" ;;
    php) php "$app/php/register-order.php" "$@" ;;
  esac
}
feed() {
  case $lang in
    python) "$work/venv/bin/python" "$app/python/feed.py" ;;
    node) node "$app/node/feed.js" ;;
    php) php "$app/php/feed.php" ;;
  esac
}
start_receiver() { # start_receiver PORT LOG
  case $lang in
    python) RECEIVER_ADDR=127.0.0.1:$1 "$work/venv/bin/python" "$app/python/receiver.py" 2>"$2" & ;;
    node) RECEIVER_ADDR=127.0.0.1:$1 node "$app/node/receiver.js" 2>"$2" & ;;
    php) (cd "$app/php" && exec php -S "127.0.0.1:$1" receiver.php) 2>"$2" & ;;
  esac
  pids+=($!)
}

run_language() {
  local dir=$work/$lang stamp o1 o2 out code
  mkdir -p "$dir/deliveries" "$dir/handled"
  logs=("$dir/payhook.log" "$dir/receiver.log" "$dir/recorder.log")
  read -r public_port admin_port recorder_port receiver_port < <(helper ports 4)
  public=http://127.0.0.1:$public_port
  export PAYHOOK_ADMIN_URL=http://127.0.0.1:$admin_port PAYHOOK_ADMIN_TOKEN=$token
  export PAYHOOK_NOTIFY_SECRET=$secret PAYHOOK_FEED_CURSOR=$dir/feed.cursor PAYHOOK_FEED_LIMIT=1
  export HANDLED_DIR=$dir/handled

  start_receiver "$receiver_port" "$dir/receiver.log"
  python3 "$work/helper.py" record "$recorder_port" "http://127.0.0.1:$receiver_port/" "$dir/deliveries" 2>"$dir/recorder.log" &
  pids+=($!)
  # A clean environment (nothing of the CI's), the temp dir as working
  # directory (no stray .env is read), no drain delay at shutdown.
  local config=(PATH="$PATH"
    PAYSERA_PROJECT_ID="$project" PAYSERA_PROJECT_PASSWORD="$password"
    PAYSERA_PUBLIC_KEY_FILE="$work/gateway-public.pem" PAYHOOK_ADMIN_TOKEN="$token"
    PAYHOOK_DATA_DIR="$dir/data" PAYHOOK_BIND="127.0.0.1:$public_port" PAYHOOK_ADMIN_BIND="127.0.0.1:$admin_port"
    SHOP_NOTIFY_URL="http://127.0.0.1:$recorder_port/" SHOP_NOTIFY_SECRET="$secret" PAYHOOK_DRAIN_DELAY=0s)
  (cd "$dir" && exec env -i "${config[@]}" "$bin" serve) >"$dir/payhook.log" 2>&1 &
  pids+=($!)
  wait_for 20 "payhook's /readyz on $public" curl -fsS -m 2 "$public/readyz"
  wait_for 10 "the receiver on port $receiver_port" listening "$receiver_port"
  wait_for 10 "the recorder on port $recorder_port" listening "$recorder_port"

  # `payhook check` sends the test event (webhook-id 0, type payhook.test),
  # which the receiver must verify and acknowledge.
  out=$(cd "$dir" && env -i "${config[@]}" "$bin" check 2>&1) || fail "payhook check failed: $out"
  in_log "$dir/receiver.log" "verified webhook-id=0 payhook.test" || fail "payhook check's test event is not in the receiver's log: $out"
  say "payhook check: the receiver verified and acknowledged the test event (webhook-id 0)"

  stamp=$(date +%H%M%S)$RANDOM
  o1=SHOP-$stamp-$lang-1
  o2=SHOP-$stamp-$lang-2
  out=$(register "$o1" 1250 EUR 2>&1) || fail "registering $o1: $out"
  [[ $out == *"registered $o1: 201"* ]] || fail "registering $o1 answered: $out"
  out=$(register "$o1" 1250 EUR 2>&1) || fail "registering $o1 again the same way must succeed (200): $out"
  [[ $out == *"registered $o1: 200"* ]] || fail "registering $o1 again answered: $out"
  if out=$(register "$o1" 1999 EUR 2>&1); then fail "registering $o1 with another amount must fail: $out"; fi
  [[ $out == *409* ]] || fail "registering $o1 with another amount must say 409: $out"
  out=$(register "$o2" 4990 EUR 2>&1) || fail "registering $o2: $out"
  say "register: $o1 201, again 200, another amount refused (409); $o2 201"

  out=$(callback "$o1" 1250 EUR 1); [[ $out == "200 OK" ]] || fail "paid callback for $o1: payhook answered '$out', not '200 OK'"
  out=$(callback "$o2" 4990 EUR 2); [[ $out == "200 OK" ]] || fail "paid callback for $o2: payhook answered '$out', not '200 OK'"
  say "signed paid callbacks for $o1 and $o2: 200 OK"

  wait_for 20 "the receiver to verify and handle $o1's order.paid" in_log "$dir/receiver.log" "ship order $o1: paid 1250 EUR"
  wait_for 20 "the receiver to verify and handle $o2's order.paid" in_log "$dir/receiver.log" "ship order $o2: paid 4990 EUR"
  in_log "$dir/receiver.log" "verified webhook-id=1 order.paid order=$o1" || fail "no 'verified webhook-id=1 order.paid order=$o1' in the receiver's log"
  in_log "$dir/receiver.log" "verified webhook-id=2 order.paid order=$o2" || fail "no 'verified webhook-id=2 order.paid order=$o2' in the receiver's log"
  wait_for 10 "the recorder's copy of notification 1" test -s "$dir/deliveries/1.json"
  grep -q rejected "$dir/receiver.log" && fail "the receiver rejected something payhook sent"
  say "receiver: both notifications verified by the library, each handled once (204)"

  # The genuine notification 1 again, as sent and changed.
  code=$(helper replay "$dir/deliveries/1.json" "http://127.0.0.1:$receiver_port/" none)
  [[ $code == 204 ]] || fail "notification 1 sent again as it was: the receiver answered $code, not 204"
  in_log "$dir/receiver.log" "webhook-id=1 already handled" || fail "notification 1 sent again was not recognised as already handled"
  for change in body timestamp unsigned; do
    code=$(helper replay "$dir/deliveries/1.json" "http://127.0.0.1:$receiver_port/" $change)
    [[ $code == 400 ]] || fail "notification 1 with its $change changed: the receiver answered $code, not 400"
  done
  [[ $(grep -c 'rejected: ' "$dir/receiver.log") == 3 ]] || fail "the receiver's log must show 3 rejections"
  [[ $(grep -c "ship order $o1" "$dir/receiver.log") == 1 ]] || fail "$o1 was handled more than once"
  if grep -E 'Warning|Notice|Deprecated|Fatal|Traceback|Error' "$dir/receiver.log"; then fail "the receiver logged the errors above"; fi
  say "tamper: the same notification again is handled once (204); amount changed, timestamp changed, signature removed: 400, 400, 400"

  # The feed, one event a page: both events, then nothing new from the cursor.
  wait_for 10 "payhook to record events 1 and 2 as delivered" eval 'delivered 1 && delivered 2'
  out=$(feed 2>"$dir/feed.err") || fail "feed: $(cat "$dir/feed.err")"
  [[ $out == "event 1 order.paid order=$o1 state=delivered"$'\n'"event 2 order.paid order=$o2 state=delivered" ]] ||
    fail "feed from the start, one event a page, must list events 1 and 2 delivered; it printed: $out"
  [[ $(cat "$PAYHOOK_FEED_CURSOR") == 2 ]] || fail "feed cursor after two events is '$(cat "$PAYHOOK_FEED_CURSOR")', not 2"
  out=$(feed 2>"$dir/feed.err") || fail "feed again: $(cat "$dir/feed.err")"
  [[ -z $out ]] || fail "feed again from its cursor must print nothing new; it printed: $out"
  # A second payment of order 1 (another request id: not a duplicate) is a new
  # event, order.paid_again; the feed resumes from its cursor with only that one.
  out=$(callback "$o1" 1250 EUR 3); [[ $out == "200 OK" ]] || fail "second paid callback for $o1: payhook answered '$out'"
  wait_for 20 "the receiver to handle $o1's order.paid_again" in_log "$dir/receiver.log" "order $o1: order.paid_again"
  wait_for 10 "payhook to record event 3 as delivered" delivered 3
  out=$(feed 2>"$dir/feed.err") || fail "feed after the second payment: $(cat "$dir/feed.err")"
  [[ $out == "event 3 order.paid_again order=$o1 state=delivered" ]] ||
    fail "feed resumed from its cursor must list event 3 alone; it printed: $out"
  say "feed: events 1 and 2 on two pages, nothing new from the cursor, then event 3 (order.paid_again) alone"

  for pid in "${pids[@]}"; do stop "$pid"; done
  pids=()
}

passed=() skipped=()
for lang in $langs; do
  [[ $lang == @(python|node|php) ]] || fail "unknown language '$lang' in EXAMPLES_LANGS (python, node, php)"
  echo "== $lang"
  t0=$(date +%s)
  logs=()
  if ! "setup_$lang"; then
    if [[ " $required " == *" $lang "* ]]; then fail "its runtime or Standard Webhooks library could not be installed"; fi
    echo "  SKIPPED $lang: its runtime or Standard Webhooks library could not be installed here (see above)"
    skipped+=("$lang")
    continue
  fi
  run_language
  say "$lang passed in $(($(date +%s) - t0)) s"
  passed+=("$lang")
done
lang=summary
echo "== shop-side examples: passed ${passed[*]:-none}${skipped[*]:+; skipped ${skipped[*]}} ($(($(date +%s) - started)) s)"
echo "examples: ${#passed[@]} passed, 0 failed, ${#skipped[@]} skipped"
