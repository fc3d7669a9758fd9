#!/usr/bin/env python3
"""Helpers for scripts/patroni-failover.sh (standard library only, so that
Debian's python3 runs it with nothing else installed).

  ports N                      N distinct free loopback TCP ports
  wait-http URL SECONDS [--pid P]  until GET URL answers 200 (exit 1 at the deadline,
                               or once process P is gone)
  cluster URL [--exclude NAME] one line about a Patroni cluster, from GET URL/cluster:
                               "<leader name|-> <leader pg port|-> <replicas> <sync standbys> <running>"
  register                     PUT every order of the signed file through the admin API
  drive                        play the gateway: every order's paid callback sent twice at
                               once, whatever is not answered OK sent again after 100 ms
  report                       reconcile what the gateway saw with the new leader's rows

The signed file is what `loadgen --sign-only --signed FILE` writes: a header
line, then "orderid<TAB>amount<TAB>query" per order.
"""

import argparse
import collections
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse


def die(msg):
    print(f"failover.py: {msg}", file=sys.stderr)
    sys.exit(1)


def read_signed(path):
    orders = []
    with open(path, encoding="ascii") as f:
        header = f.readline()
        if not header.startswith("# payhook-loadgen signed"):
            die(f"{path}: not a loadgen signed file")
        for line in f:
            orderid, amount, query = line.rstrip("\n").split("\t", 2)
            orders.append((orderid, int(amount), query))
    if not orders:
        die(f"{path}: no signed callbacks")
    return orders


def request(base, method, path, body=None, headers=None, timeout=10.0):
    """(status, body text) or raises OSError / http.client.HTTPException."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


# --- ports -------------------------------------------------------------------


def cmd_ports(args):
    # Below the kernel's ephemeral range, so no outgoing connection of this
    # run (payhook to PostgreSQL, Patroni to etcd) can already hold one.
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except OSError:
        low = 32768
    low = max(low, 12000)
    chosen = set()
    for _ in range(2000):
        if len(chosen) == args.n:
            break
        port = random.randrange(10000, low)
        if port in chosen:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        chosen.add(port)
    if len(chosen) != args.n:
        die("not enough free loopback ports")
    print(" ".join(map(str, sorted(chosen))))


# --- waiting and cluster state ------------------------------------------------


def alive(pid):
    """Running, and not a zombie its parent (the script) has yet to reap."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmd_wait_http(args):
    deadline = time.monotonic() + args.seconds
    last = "no answer"
    url = urllib.parse.urlsplit(args.url)
    while time.monotonic() < deadline:
        if args.pid is not None and not alive(args.pid):
            die(f"waiting for {args.url}: process {args.pid} exited")
        try:
            status, body = request(f"{url.scheme}://{url.netloc}", "GET", url.path or "/", timeout=2)
            if status == 200:
                return
            last = f"HTTP {status} {body.strip()[:200]}"
        except (OSError, http.client.HTTPException) as err:
            last = str(err)
        time.sleep(0.2)
    die(f"{args.url} not ready within {args.seconds}s (last: {last})")


def cmd_cluster(args):
    """Never fails: a node that does not answer prints the '-' line."""
    try:
        status, body = request(args.url, "GET", "/cluster", timeout=2)
        members = json.loads(body)["members"] if status == 200 else []
    except Exception:  # pylint: disable=broad-except # any trouble: no answer yet
        members = []
    members = [m for m in members if m.get("name") != args.exclude]
    leader = next((m for m in members if m.get("role") in ("leader", "master")
                   and m.get("state") == "running"), None)
    replicas = [m for m in members if m.get("role") in ("replica", "sync_standby")]
    sync = [m for m in replicas if m.get("role") == "sync_standby"]
    running = [m for m in members if m.get("state") in ("running", "streaming")]
    print(leader["name"] if leader else "-", leader.get("port", "-") if leader else "-",
          len(replicas), len(sync), len(running))


# --- registering orders ---------------------------------------------------------


def cmd_register(args):
    token = os.environ.get("PAYHOOK_ADMIN_TOKEN") or die("PAYHOOK_ADMIN_TOKEN not set")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for orderid, amount, _ in read_signed(args.signed):
        body = json.dumps({"amount": amount, "currency": "EUR"})
        status, text = request(args.admin, "PUT", f"/api/v1/orders/{orderid}", body, headers)
        if status // 100 != 2:
            die(f"registering {orderid}: HTTP {status} {text.strip()[:300]}")


# --- the gateway ---------------------------------------------------------------------


def cmd_drive(args):
    orders = read_signed(args.signed)
    queries = {orderid: query for orderid, _, query in orders}
    queue = collections.deque(queries)
    lock = threading.Lock()
    # Per order: when it was first answered OK, and when that request was sent.
    ok_at, ok_sent_at, attempts = {}, {}, collections.Counter()
    answers = collections.Counter()  # "200 OK", "503", "error: ...": every reply
    answers_after_kill = collections.Counter()
    start = time.time()
    deadline = time.monotonic() + args.deadline
    # First deliveries are paced (args.rate callbacks/s) so that the kill
    # falls in the middle of the load, not after it; retries are not.
    first_due = [time.monotonic()]
    threshold_written = [False]

    def killed_at():
        try:
            with open(args.kill_file) as f:
                return float(f.read().strip() or "nan")
        except (OSError, ValueError):
            return None

    def send(query, slot, results):
        sent = time.time()
        try:
            status, body = request(args.public, "GET", f"/paysera/callback?{query}",
                                   timeout=args.request_timeout)
            label = "200 OK" if (status, body) == (200, "OK") else f"{status} {body.strip()[:60]}"
        except (OSError, http.client.HTTPException) as err:
            label = f"error: {type(err).__name__}"
        results[slot] = (label, sent, time.time())

    def sender():
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    return
                orderid = queue.popleft()
                first = attempts[orderid] == 0
                attempts[orderid] += 1
                if first:
                    due = first_due[0]
                    first_due[0] = max(due, time.monotonic()) + 1.0 / args.rate
            if first:
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            # The same signed callback twice at once: a duplicate racing its
            # first delivery, as the gateway's retries can.
            results = [None, None]
            pair = [threading.Thread(target=send, args=(queries[orderid], i, results))
                    for i in (0, 1)]
            for t in pair:
                t.start()
            for t in pair:
                t.join()
            kill = killed_at()
            with lock:
                for label, sent, done in results:
                    answers[label] += 1
                    if kill is not None and sent > kill:
                        answers_after_kill[label] += 1
                oks = [(done, sent) for label, sent, done in results if label == "200 OK"]
                if oks:
                    done, sent = min(oks)
                    ok_at.setdefault(orderid, done)
                    ok_sent_at.setdefault(orderid, sent)
                    if len(ok_at) >= args.threshold and not threshold_written[0]:
                        threshold_written[0] = True
                        with open(args.threshold_file + ".partial", "w") as f:
                            f.write(f"{time.time():.6f}\n")
                        os.rename(args.threshold_file + ".partial", args.threshold_file)
                    continue
            # Not answered OK: the gateway sends it again a little later.
            time.sleep(0.1)
            with lock:
                queue.append(orderid)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = {
        "orders": [o for o, _, _ in orders],
        "started_at": start,
        "finished_at": time.time(),
        "ok_at": ok_at,
        "ok_sent_at": ok_sent_at,
        "attempts": attempts,
        "answers": answers,
        "answers_after_kill": answers_after_kill,
        "timed_out": bool(queue) or len(ok_at) < len(orders),
    }
    with open(args.out + ".partial", "w") as f:
        json.dump(result, f)
    os.rename(args.out + ".partial", args.out)


# --- the reconciliation -----------------------------------------------------------------


def cmd_report(args):
    with open(args.results) as f:
        r = json.load(f)
    kill = float(args.kill_at)
    leader = float(args.leader_at) if args.leader_at not in ("", "-") else None
    orders = r["orders"]
    ok_at, ok_sent_at = r["ok_at"], r["ok_sent_at"]
    # "orderid<TAB>state<TAB>fulfilments" per registered order, from the new leader.
    rows = {}
    with open(args.rows) as f:
        for line in f:
            if line.strip():
                orderid, state, n = line.rstrip("\n").split("\t")
                rows[orderid] = (state, int(n))

    ok_lost = sorted(o for o in ok_at if rows.get(o, ("", 0))[1] != 1)
    doubles = sorted(o for o, (_, n) in rows.items() if n >= 2)
    unpaid = sorted(o for o in orders
                    if o not in ok_at or rows.get(o, ("", 0)) != ("paid", 1))
    before = sum(1 for t in ok_at.values() if t <= kill)
    after = len(ok_at) - before
    # Recovery: the first OK to a request sent after the kill (an OK landing
    # just after it may answer a commit made before it).
    recovered = [ok_at[o] for o, sent in ok_sent_at.items() if sent > kill]
    first_ok = min(recovered) - kill if recovered else None
    n503 = sum(n for label, n in r["answers"].items() if label.startswith("503"))
    n503_after = sum(n for label, n in r["answers_after_kill"].items() if label.startswith("503"))
    other = {label: n for label, n in r["answers"].items()
             if label != "200 OK" and not label.startswith("503")}

    def secs(x):
        return "-" if x is None else f"{x:.2f}s"

    print(f"summary: orders {len(orders)}, answered OK {len(ok_at)} "
          f"({before} before the kill, {after} after), 503s {n503} "
          f"({n503_after} to requests sent after the kill), "
          f"other non-OK {sum(other.values())}")
    if other:
        print(f"summary: other non-OK answers: {json.dumps(other, sort_keys=True)}")
    print(f"summary: kill -> new leader {secs(None if leader is None else leader - kill)}, "
          f"kill -> first OK of a request sent after it {secs(first_ok)}, "
          f"drive took {r['finished_at'] - r['started_at']:.1f}s")
    print(f"summary: OK without fulfilment {len(ok_lost)}, fulfilled twice {len(doubles)}, "
          f"not paid in the end {len(unpaid)}")
    failures = []
    if ok_lost:
        failures.append(f"answered OK but not fulfilled exactly once: {ok_lost[:10]}")
    if doubles:
        failures.append(f"fulfilled more than once: {doubles[:10]}")
    if unpaid:
        failures.append(f"not paid in the end ({len(unpaid)}; the drive "
                        f"{'timed out' if r['timed_out'] else 'finished'}): {unpaid[:10]}")
    if not (args.threshold <= before < len(orders)):
        failures.append(f"{before} orders were paid before the kill: the leader did not "
                        "die in the middle of the load, so the run shows nothing")
    if first_ok is None:
        failures.append("no request sent after the kill was answered OK")
    extra = sorted(set(rows) - set(orders))
    if extra:
        failures.append(f"rows for orders this run never registered: {extra[:10]}")
    for failure in failures:
        print(f"FAIL: {failure}")
    sys.exit(1 if failures else 0)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ports")
    s.add_argument("n", type=int)
    s = sub.add_parser("wait-http")
    s.add_argument("url")
    s.add_argument("seconds", type=float)
    s.add_argument("--pid", type=int, default=None, help="give up once this process is gone")
    s = sub.add_parser("cluster")
    s.add_argument("url")
    s.add_argument("--exclude", default=None)
    s = sub.add_parser("register")
    s.add_argument("--admin", required=True)
    s.add_argument("--signed", required=True)
    s = sub.add_parser("drive")
    s.add_argument("--public", required=True)
    s.add_argument("--signed", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threshold", type=int, default=100)
    s.add_argument("--threshold-file", required=True)
    s.add_argument("--kill-file", required=True)
    s.add_argument("--deadline", type=float, default=120)
    s.add_argument("--workers", type=int, default=8)
    s.add_argument("--rate", type=float, default=40)
    s.add_argument("--request-timeout", type=float, default=15)
    s = sub.add_parser("report")
    s.add_argument("--results", required=True)
    s.add_argument("--rows", required=True)
    s.add_argument("--kill-at", required=True)
    s.add_argument("--leader-at", default="-")
    s.add_argument("--threshold", type=int, default=100)
    args = p.parse_args()
    {"ports": cmd_ports, "wait-http": cmd_wait_http, "cluster": cmd_cluster,
     "register": cmd_register, "drive": cmd_drive, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
