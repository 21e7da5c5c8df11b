#!/usr/bin/env bash
# Regions: the native edge and two media nodes (eu-west, na-east), each in its own network
# namespace, and a client namespace; tests/tests/regions.rs runs in the client's namespace and
# checks placement by the caller's location and drain.
#
#   e (edge, 10.78.{1,2,3}.1) -- n1 (eu-1, 10.78.1.2), n2 (us-1, 10.78.2.2), c (tests, 10.78.3.2)
#
# This kernel has no sch_netem, so the links carry no added delay: placement is decided by the
# callers' location and the nodes' declared regions, which is what the test checks.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin_dir="${EDGEMEET_BIN_DIR:-target/debug}"
id="rg$$"
e="$id-e" n1="$id-n1" n2="$id-n2" c="$id-c"
work="$(mktemp -d)"
cleanup() {
  for ns in "$e" "$n1" "$n2" "$c"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  sleep 0.3
  for ns in "$e" "$n1" "$n2" "$c"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

for ns in "$e" "$n1" "$n2" "$c"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
i=1
for ns in "$n1" "$n2" "$c"; do
  ip link add "$id-$i" netns "$e" type veth peer name eth0 netns "$ns"
  ip -n "$e" addr add "10.78.$i.1/24" dev "$id-$i"
  ip -n "$e" link set "$id-$i" up
  ip -n "$ns" addr add "10.78.$i.2/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "10.78.$i.1"
  i=$((i + 1))
done
ip netns exec "$e" sysctl -qw net.ipv4.ip_forward=1

secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat >"$work/edge.toml" <<EOF
listen = "0.0.0.0:8080"
web_dir = "$root/edge/web"
embed_media_node = false
trust_location_headers = true

[metrics]
token = "$secret"

[edge]
node_secret = "$secret"
EOF
ip netns exec "$e" "$bin_dir/edgemeet" --config "$work/edge.toml" >"$work/edge.log" 2>&1 &

node() { # ns id region lat lon address
  cat >"$work/$2.toml" <<EOF
id = "$2"
region = "$3"
lat = $4
lon = $5
listen = "$6:7880"
public_url = "http://$6:7880"
media_ip = "$6"
edge_url = "http://${6%.2}.1:8080"
heartbeat_secs = 1
EOF
  EDGEMEET_NODE_SECRET="$secret" ip netns exec "$1" "$bin_dir/edgemeet-media-node" "$work/$2.toml" \
    >"$work/$2.log" 2>&1 &
}
node "$n1" eu-1 eu-west 53.3 -6.3 10.78.1.2
node "$n2" us-1 na-east 39.0 -77.5 10.78.2.2

# Both nodes registered (heartbeats crossed the namespaces).
known=0
for _ in $(seq 1 100); do
  known=$(ip netns exec "$c" curl -fsS -H "Authorization: Bearer $secret" http://10.78.3.1:8080/metrics 2>/dev/null \
    | sed -n 's/^edgemeet_media_nodes_known \([0-9]*\).*/\1/p' || true)
  [ "${known:-0}" = 2 ] && break
  sleep 0.2
done
echo "edge knows ${known:-0} media nodes"
if [ "${known:-0}" != 2 ]; then
  for f in edge.log eu-1.log us-1.log; do echo "--- $f"; tail -n 30 "$work/$f"; done
  echo "FAIL: both media nodes should have registered with the edge"; exit 1
fi

# `--workspace`: the selection of tests/run's build, so this finds it fresh (`-p edgemeet-tests`
# would unify features differently and rebuild rustls, tracing and what depends on them).
test_bin="$(cargo test --workspace --test regions --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "regions":
        print(m["executable"])')"
status=0
EDGEMEET_URL=http://10.78.3.1:8080 REGIONS_EU_NODE=10.78.1.2:7880 REGIONS_NODE_SECRET="$secret" \
  ip netns exec "$c" "$test_bin" --ignored --test-threads=1 || status=1
if [ "$status" != 0 ] || [ "${known:-0}" != 2 ]; then
  for f in edge.log eu-1.log us-1.log; do echo "--- $f"; tail -n 30 "$work/$f"; done
  exit 1
fi
