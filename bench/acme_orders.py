#!/usr/bin/env python3
"""bench/acme_orders.py [TLSGATE] COUNT: ACME orders per minute against Pebble (issue 11,
bench/enroll.sh). Pebble, pebble-challtestsrv (DNS only) and the ARI responder are set up
as tests/e2e/test_acme.py sets them up (its PebbleCase, reused rather than copied); serve
answers http-01 on its --http listener; COUNT `tlsgate acme order` commands run one after
another, each a new certificate for a new name (new key, new order, one authorization,
validation, finalize, download, import). Prints "orders seconds cpu_ms" (cpu_ms: the
order commands' own CPU, from the children's rusage)."""
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
if len(sys.argv) > 2:
    os.environ["TLSGATE_BIN"] = os.path.abspath(sys.argv[1])
import test_acme  # noqa: E402

count = int(sys.argv[-1])
case = test_acme.PebbleCase()
case.setUp()
try:
    case.ok("acme", "account", "create", "--directory", case.directory, "--directory-ca",
            case.tls["ca.pem"])
    case.serve()
    case.ok("acme", "order", "warm", "--domain", "warm.example.com")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    for i in range(count):
        case.ok("acme", "order", f"b{i}", "--domain", f"b{i}.example.com")
    secs = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1000
    print(count, f"{secs:.3f}", f"{cpu:.0f}")
finally:
    case.tearDown()
