#!/usr/bin/env bash
# Checks the monitoring files with Prometheus's own tool (promtool, Debian package
# `prometheus`): the compose config and its localhost rendering, the recording and
# alerting rules, the alerts' unit tests, and that every alert fires in at least one test.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
P="$ROOT/docker/prometheus"
promtool check config "$P/prometheus.yml" >/dev/null
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$ROOT/scripts/prometheus.sh" "$tmp"
promtool check config "$tmp/prometheus.yml" >/dev/null
promtool check rules "$P"/rules/*.yml >/dev/null
promtool test rules "$P"/tests/*.yml
# Every Grafana panel query parses (each becomes a recording rule for promtool).
python3 "$ROOT/scripts/dashboard-queries.py" rules >"$tmp/dashboard-queries.yml"
promtool check rules "$tmp/dashboard-queries.yml" >/dev/null
# An alert counts as tested when some `alertname: X` is followed by a non-empty
# `exp_alerts:` list.
fired="$(awk '/alertname:/ {name = $2; next} name != "" && /exp_alerts:/ { if ($0 !~ /\[\]/) print name; name = "" }' "$P"/tests/*.yml | sort -u)"
missing=""
for alert in $(awk '/- alert:/ {print $3}' "$P"/rules/*.yml); do
  grep -qx "$alert" <<<"$fired" || missing+=" $alert"
done
if [ -n "$missing" ]; then
  echo "check-monitoring: no unit test makes these alerts fire:$missing" >&2
  exit 1
fi
echo "check-monitoring: config, rules and $(wc -w <<<"$fired") alert tests ok"
