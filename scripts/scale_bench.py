#!/usr/bin/env python3
"""HTTP half of scripts/scale-bench.sh: times payhook's read paths and paid
callbacks, and prints the report. Standard library only (no requests, no
psycopg), so that it runs wherever python3 does.

  scale_bench.py constants GEN_CALLBACKS_PY
      the project id and password gen_callbacks.py signs with, one a line
      (read from its source, not imported: importing it pulls in paysim)
  scale_bench.py reads --public URL --admin URL --phase P --out FILE.jsonl
                       --orderid ID --callback-id ID --after SEQ [--repeat 20] [--project 123]
  scale_bench.py paid  --public URL --admin URL --phase P --out FILE.jsonl
                       --callbacks FILE [--first N --count M] [--registered]
                       [--until FILE] [--project 123]
      registers the slice's orders (unless --registered), then sends their
      paid callbacks one at a time (until FILE exists, with --until)
  scale_bench.py register  (the same arguments): the registration alone
  scale_bench.py table FILE.jsonl [KEY=VALUE ...]

Each timing is appended to FILE.jsonl as one JSON object (phase, path, n,
median_ms, p95_ms, max_ms); `table` prints them side by side, one column
pair per phase.

The admin token is read from the environment (PAYHOOK_ADMIN_TOKEN), never
from the command line: arguments are visible to every user in `ps`.
Every answer must be what the path promises (200, or body OK for a
callback); anything else stops the run with the status and the start of the
body, because a benchmark of error pages measures nothing.
"""
import argparse
import ast
import csv
import http.client
import json
import math
import os
import statistics
import sys
import time
import urllib.parse


def die(msg):
    print('[scale-bench] error: ' + msg, file=sys.stderr)
    sys.exit(1)


class Client:
    """One keep-alive connection to one listener.

    A persistent connection (as a browser or a shop's HTTP client keeps one)
    so that the figures are payhook's answer time, not a TCP handshake each;
    urllib.request opens a connection per request. http.client reconnects by
    itself after an answer that closed the connection
    (PAYHOOK_CONNECTION_MAX_REQUESTS / MAX_AGE); a read whose connection was
    closed while idle is retried once on a fresh one.
    """

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        if u.scheme != 'http' or not u.hostname:
            die('expected an http://host:port URL, got %r' % base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method, path, headers=None, body=None, retry=True):
        """(status, headers, body bytes, seconds) of one request."""
        if self.conn is None:
            self._connect()
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()
            self._connect()
            if not retry:
                raise
            return self.request(method, path, headers, body, retry=False)
        elapsed = time.perf_counter() - start
        return resp.status, resp.headers, data, elapsed


def admin_token():
    token = os.environ.get('PAYHOOK_ADMIN_TOKEN', '')
    if not token:
        die('PAYHOOK_ADMIN_TOKEN is not set')
    return token


def expect(status, data, what, want=200):
    if status != want:
        snippet = data[:300].decode('utf-8', 'replace').replace('\n', ' ')
        die('%s answered %d (wanted %d): %s' % (what, status, want, snippet))


def percentile(samples, p):
    """Nearest-rank percentile: a value that was measured, never interpolated."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(label, samples):
    ms = [s * 1000 for s in samples]
    return {'path': label, 'n': len(ms), 'median_ms': round(statistics.median(ms), 2),
            'p95_ms': round(percentile(ms, 95), 2), 'max_ms': round(max(ms), 2)}


def write(a, row):
    row = dict(row, phase=a.phase)
    with open(a.out, 'a') as f:
        f.write(json.dumps(row) + '\n')
    print('[scale-bench] [%s] %-50s median %8.2f ms  p95 %8.2f ms  (n=%d)'
          % (a.phase, row['path'], row['median_ms'], row['p95_ms'], row['n']), file=sys.stderr)


def login(admin, token):
    """A console session as a browser gets one: POST the token, keep the cookie."""
    body = urllib.parse.urlencode({'token': token})
    status, headers, data, _ = admin.request(
        'POST', '/ui/login', body=body,
        headers={'Content-Type': 'application/x-www-form-urlencoded'})
    expect(status, data, 'POST /ui/login', want=303)
    for value in headers.get_all('Set-Cookie') or []:
        pair = value.split(';', 1)[0].strip()
        if pair.startswith('payhook_session=') and pair != 'payhook_session=':
            return pair
    die('POST /ui/login set no payhook_session cookie')


def cmd_constants(a):
    # The values are module-level string assignments (PROJECT_ID = '123').
    tree = ast.parse(open(a.gen).read(), a.gen)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            found[node.targets[0].id] = node.value.value
    for name in ('PROJECT_ID', 'PASSWORD'):
        if name not in found:
            die('%s: no %s = "..." assignment found' % (a.gen, name))
    print(found['PROJECT_ID'])
    print(found['PASSWORD'])


def cmd_reads(a):
    token = admin_token()
    admin = Client(a.admin)
    cookie = login(admin, token)
    console = {'Cookie': cookie}
    api = {'Authorization': 'Bearer ' + token}
    q = urllib.parse.quote
    oid = q(a.orderid, safe='')
    proj = q(a.project, safe='')
    # (who asks, the row's name in the table, the request). The names keep
    # the ids out, so that the phases' rows line up; the ids are logged.
    paths = [
        ('console', '/ui/', '/ui/'),
        ('console', '/ui/callbacks', '/ui/callbacks'),
        ('console', '/ui/callbacks?outcome=duplicate', '/ui/callbacks?outcome=duplicate'),
        ('console', '/ui/callbacks?since=1h', '/ui/callbacks?since=1h'),
        ('console', '/ui/callbacks?api=checkout', '/ui/callbacks?api=checkout'),
        ('console', '/ui/callbacks?orderid={order}', '/ui/callbacks?orderid=' + oid),
        ('console', '/ui/callbacks/{middle id}', '/ui/callbacks/%d' % a.callback_id),
        ('console', '/ui/orders/{order}?project_id=%s' % proj,
         '/ui/orders/%s?project_id=%s' % (oid, proj)),
        ('console', '/ui/notifications', '/ui/notifications'),
        ('api', '/api/v1/callbacks', '/api/v1/callbacks'),
        ('api', '/api/v1/callbacks?outcome=duplicate', '/api/v1/callbacks?outcome=duplicate'),
        ('api', '/api/v1/orders/{order}?project_id=%s' % proj,
         '/api/v1/orders/%s?project_id=%s' % (oid, proj)),
        ('api', '/api/v1/events', '/api/v1/events'),
        ('api', '/api/v1/events?after={last seq - 10}', '/api/v1/events?after=%d' % a.after),
        ('api', '/metrics', '/metrics'),
    ]
    if a.dump:
        os.makedirs(a.dump, exist_ok=True)
    for n, (kind, label, path) in enumerate(paths):
        headers = console if kind == 'console' else api
        samples = []
        # Two warm-up requests: the first use of a page parses its
        # statements and reads its pages into the cache; what is measured
        # is an operator's second look, as every look after the first is.
        for i in range(a.warmup + a.repeat):
            status, _, data, secs = admin.request('GET', path, headers=headers)
            expect(status, data, 'GET ' + path)
            if i >= a.warmup:
                samples.append(secs)
        if a.dump:
            # The last answer of each path, to look at what was measured.
            with open(os.path.join(a.dump, '%02d.txt' % n), 'wb') as f:
                f.write(('GET %s\n\n' % path).encode() + data)
        write(a, summary('GET ' + label, samples))


def callbacks_slice(a):
    """Callbacks first..first+count of the generated file, with their orders."""
    with open(a.callbacks + '.orders.csv', newline='') as f:
        orders = list(csv.DictReader(f))
    lines = [l.strip() for l in open(a.callbacks) if l.strip()]
    if not orders or len(orders) != len(lines):
        die('%s: %d callbacks but %d orders' % (a.callbacks, len(lines), len(orders)))
    end = a.first + a.count if a.count else len(lines)
    if a.first < 0 or end > len(lines):
        die('%s holds %d callbacks, not %d..%d' % (a.callbacks, len(lines), a.first, end))
    return orders[a.first:end], lines[a.first:end]


def register(a, admin, orders):
    """The shop registers every order first, as it would before sending the
    buyer to pay."""
    api = {'Authorization': 'Bearer ' + admin_token(), 'Content-Type': 'application/json'}
    put = []
    for o in orders:
        body = json.dumps({'amount': int(o['amount']), 'currency': o['currency'],
                           'project_id': a.project})
        path = '/api/v1/orders/' + urllib.parse.quote(o['orderid'], safe='')
        status, _, data, secs = admin.request('PUT', path, headers=api, body=body)
        expect(status, data, 'PUT ' + path, want=201)
        put.append(secs)
    return put


def cmd_register(a):
    orders, _ = callbacks_slice(a)
    register(a, Client(a.admin), orders)


def send_paid(public, line):
    """One paid callback of the generated file; its answer time in seconds."""
    # The generator writes whole request paths: /paysera/callback?data=...
    path = line if line.startswith('/') else '/paysera/callback?' + line
    # No retry: a second send would be a duplicate delivery, another path.
    status, _, data, secs = public.request('GET', path, retry=False)
    expect(status, data, 'GET /paysera/callback (order %s)' % path[:60])
    if data.strip() != b'OK':
        die('a paid callback answered %r, not OK' % data[:200])
    return secs


def cmd_paid(a):
    orders, lines = callbacks_slice(a)
    if not a.registered:
        put = register(a, Client(a.admin), orders)
        write(a, summary('PUT /api/v1/orders/{id} (register)', put))
    public = Client(a.public)
    paid = []
    for line in lines:
        # Sent until the file named by --until appears (a pass is over).
        if a.until and os.path.exists(a.until):
            break
        paid.append(send_paid(public, line))
    if not paid:
        if not a.until:
            die('no paid callback was sent')
        print('[scale-bench] warning: %s appeared before any callback was sent' % a.until,
              file=sys.stderr)
        return
    if a.until and not os.path.exists(a.until):
        print('[scale-bench] warning: the %d callbacks ran out before %s appeared'
              % (len(lines), a.until), file=sys.stderr)
    write(a, summary('GET /paysera/callback (new paid)', paid))


def cmd_paid_pair(a):
    """Two services at once (--public/--admin, --public-b/--admin-b), each
    with its own callbacks (from --first, from --first-b, --count each): the
    orders registered on each, then the paid callbacks sent alternately, one
    to each in turn, so that whatever else slows the machine meanwhile slows
    both alike. One summary per service, as phases --phase and --phase-b."""
    b = argparse.Namespace(**vars(a))
    b.first = a.first_b
    orders_a, lines_a = callbacks_slice(a)
    orders_b, lines_b = callbacks_slice(b)
    register(a, Client(a.admin), orders_a)
    register(b, Client(a.admin_b), orders_b)
    public_a, public_b = Client(a.public), Client(a.public_b)
    paid_a, paid_b = [], []
    for line_a, line_b in zip(lines_a, lines_b):
        paid_a.append(send_paid(public_a, line_a))
        paid_b.append(send_paid(public_b, line_b))
    write(a, summary('GET /paysera/callback (new paid)', paid_a))
    b.phase = a.phase_b
    write(b, summary('GET /paysera/callback (new paid)', paid_b))


def cmd_table(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    meta = dict(kv.split('=', 1) for kv in a.meta)
    phases, paths, cell = [], [], {}
    for r in rows:
        if r['phase'] not in phases:
            phases.append(r['phase'])
        if r['path'] not in paths:
            paths.append(r['path'])
        cell[(r['path'], r['phase'])] = r
    # Reads first, then the writes (registration, paid callback), whichever
    # order the phases ran them in.
    first = {p: n for n, p in enumerate(paths)}
    paths.sort(key=lambda p: (not p.startswith('GET /ui') and not p.startswith('GET /api')
                              and p != 'GET /metrics', first[p]))
    head = ''.join(' | median ms (%s) | p95 ms (%s)' % (ph, ph) for ph in phases)
    print('| path' + head + ' |')
    print('|---' + '|---:|---:' * len(phases) + '|')
    for p in paths:
        cols = ''
        for ph in phases:
            r = cell.get((p, ph))
            cols += ' | %.2f | %.2f' % (r['median_ms'], r['p95_ms']) if r else ' | - | -'
        print('| `%s`%s |' % (p, cols))
    print()
    print('| what | value |')
    print('|---|---:|')
    for k, v in meta.items():
        print('| %s | %s |' % (k, v))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    c = sub.add_parser('constants')
    c.add_argument('gen')
    for name in ('reads', 'paid', 'register', 'paid-pair'):
        s = sub.add_parser(name)
        s.add_argument('--public', required=True)
        s.add_argument('--admin', required=True)
        s.add_argument('--out', required=True)
        s.add_argument('--phase', required=True)
        s.add_argument('--project', default='123')
    r = sub.choices['reads']
    r.add_argument('--repeat', type=int, default=20)
    r.add_argument('--warmup', type=int, default=2)
    r.add_argument('--orderid', required=True)
    r.add_argument('--callback-id', type=int, required=True)
    r.add_argument('--after', type=int, required=True)
    r.add_argument('--dump', help='a directory for the last answer of each path')
    for name in ('paid', 'register', 'paid-pair'):
        pd = sub.choices[name]
        pd.add_argument('--callbacks', required=True)
        pd.add_argument('--first', type=int, default=0, help='the first callback of the file to use')
        pd.add_argument('--count', type=int, default=0, help='how many (0: to the end)')
    pd = sub.choices['paid']
    pd.add_argument('--registered', action='store_true', help='the orders are registered already')
    pd.add_argument('--until', help='stop sending once this file exists')
    pp = sub.choices['paid-pair']
    pp.add_argument('--public-b', required=True)
    pp.add_argument('--admin-b', required=True)
    pp.add_argument('--phase-b', required=True)
    pp.add_argument('--first-b', type=int, required=True)
    t = sub.add_parser('table')
    t.add_argument('results')
    t.add_argument('meta', nargs='*')
    a = p.parse_args()
    if getattr(a, 'repeat', 1) < 1:
        die('--repeat must be at least 1')
    {'constants': cmd_constants, 'reads': cmd_reads, 'paid': cmd_paid,
     'register': cmd_register, 'paid-pair': cmd_paid_pair, 'table': cmd_table}[a.cmd](a)


if __name__ == '__main__':
    main()
