#!/usr/bin/python3
"""api_load.py MODE PORT CA TOKEN SECS [NAMES] — one client of bench/api.sh.

Keeps one HTTPS connection (TLS checked against CA, keep-alive) to the admin listener on
127.0.0.1:PORT and, for SECS seconds, sends requests one after another:
  page    GET /api/v1/certificates?limit=100&after=NAME, NAME taken at random from the file
          NAMES (one name per line, in name order; not the last 100, so every page is
          full), so that pages come from all over the table;
  create  POST /api/v1/certificates {"name": "bench-<pid>-<i>", "cn": …, "key": "ec:p256"}.
Every answer must be 200 (page, with 100 rows) or 201 (create); anything else stops it
with exit status 1. Prints "requests=N secs=S".
"""
import http.client
import json
import os
import random
import ssl
import sys
import time


def main():
    mode, port, ca, token, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
    names = []
    if mode == "page":
        with open(sys.argv[6]) as f:
            names = [ln.rstrip("\n") for ln in f if ln.strip()]
        names = names[:-100] or names[:1]  # in name order: every cursor leaves a full page
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    head = {"Authorization": "Bearer " + token}
    rng = random.Random(1)
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        if mode == "page":
            after = rng.choice(names)
            conn.request("GET", "/api/v1/certificates?limit=100&after=" +
                         after.replace(" ", "%20"), headers=head)
            want = 200
        else:
            body = json.dumps({"name": f"bench-{os.getpid()}-{n}", "cn": f"b{n}.bench.test",
                               "key": "ec:p256", "days": 30})
            conn.request("POST", "/api/v1/certificates", body=body,
                         headers=dict(head, **{"Content-Type": "application/json"}))
            want = 201
        r = conn.getresponse()
        data = r.read()
        if r.status != want:
            print(f"api_load: {r.status}: {data[:300]!r}", file=sys.stderr)
            sys.exit(1)
        if mode == "page" and len(json.loads(data)["items"]) == 0:
            print("api_load: an empty page", file=sys.stderr)
            sys.exit(1)
        n += 1
    print(f"requests={n} secs={time.monotonic() - t0:.3f}")


if __name__ == "__main__":
    main()
