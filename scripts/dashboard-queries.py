#!/usr/bin/env python3
"""Every panel query of the Grafana dashboards in docker/grafana/dashboards.

  dashboard-queries.py rules   -> a Prometheus rules file with each query as a recording
                                  rule (promtool check rules then parses every query)
  dashboard-queries.py check URL
                               -> asks the Prometheus at URL for each query; exits 1 naming
                                  every panel whose query fails or returns no data
"""
import glob
import json
import os
import sys
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def queries():
    for path in sorted(glob.glob(os.path.join(ROOT, "docker/grafana/dashboards/*.json"))):
        with open(path) as f:
            dash = json.load(f)
        for panel in dash.get("panels", []):
            if panel.get("datasource", {}).get("uid") != "prometheus":
                sys.exit(f"{os.path.basename(path)}: panel {panel.get('title')!r} is not on the prometheus datasource")
            targets = panel.get("targets", [])
            if not targets:
                sys.exit(f"{os.path.basename(path)}: panel {panel.get('title')!r} has no query")
            for t in targets:
                yield os.path.basename(path), panel["title"], t["expr"]


def rules():
    print("groups:\n  - name: dashboard-queries\n    rules:")
    for i, (_, _, expr) in enumerate(queries()):
        print(f"      - record: dashboard:query:{i}")
        print(f"        expr: {json.dumps(expr)}")


def check(url):
    broken = []
    n = 0
    for dash, title, expr in queries():
        n += 1
        q = urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
                body = json.load(r)
        except Exception as e:  # noqa: BLE001 - report and go on
            broken.append(f"{dash}: {title}: {expr}: {e}")
            continue
        if body.get("status") != "success":
            broken.append(f"{dash}: {title}: {expr}: {body.get('error')}")
        elif not body["data"]["result"]:
            broken.append(f"{dash}: {title}: {expr}: no data")
    for line in broken:
        print(line, file=sys.stderr)
    print(f"{n - len(broken)} of {n} panel queries return data")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["rules"]:
        rules()
    elif sys.argv[1:2] == ["check"] and len(sys.argv) == 3:
        check(sys.argv[2].rstrip("/"))
    else:
        sys.exit(__doc__)
