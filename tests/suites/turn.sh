#!/usr/bin/env bash
# TURN: two browsers that cannot reach each other meet through coturn with the time-limited
# credentials the edge hands out (the TURN REST API scheme).
#
# Three network namespaces made here: `t` (the edge and coturn, a router that does not forward),
# `a` and `b` (one Chromium each), linked a <-> t <-> b by veth pairs. a and b reach t's addresses
# but not each other, so the only way for media is a relay on coturn.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin_dir="${EDGEMEET_BIN_DIR:-target/debug}"
id="em$$"
t="$id-t" a="$id-a" b="$id-b"
work="$(mktemp -d)"
cleanup() {
  for ns in "$t" "$a" "$b"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  sleep 0.3
  for ns in "$t" "$a" "$b"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

for ns in "$t" "$a" "$b"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip link add "$id-ta" netns "$t" type veth peer name eth0 netns "$a"
ip link add "$id-tb" netns "$t" type veth peer name eth0 netns "$b"
ip -n "$t" addr add 10.77.1.1/24 dev "$id-ta"
ip -n "$t" addr add 10.77.2.1/24 dev "$id-tb"
ip -n "$a" addr add 10.77.1.2/24 dev eth0
ip -n "$b" addr add 10.77.2.2/24 dev eth0
for l in "$t:$id-ta" "$t:$id-tb" "$a:eth0" "$b:eth0"; do ip -n "${l%%:*}" link set "${l#*:}" up; done
ip -n "$a" route add default via 10.77.1.1
ip -n "$b" route add default via 10.77.2.1
ip netns exec "$t" sysctl -qw net.ipv4.ip_forward=0

# The premise: a cannot reach b.
if ip netns exec "$a" python3 -c '
import socket, sys
s = socket.socket(); s.settimeout(1)
try: s.connect(("10.77.2.2", 9)); sys.exit(0)
except ConnectionRefusedError: sys.exit(0)
except OSError: sys.exit(1)'; then
  echo "FAIL: a reaches b directly; the test would prove nothing"; exit 1
fi
echo "a and b cannot reach each other; both reach 10.77.x.1 (edge and coturn)"

secret="$(head -c 24 /dev/urandom | base64)"
ip netns exec "$t" turnserver -n -v --listening-ip=10.77.1.1 --listening-ip=10.77.2.1 --listening-port=3478 \
  --use-auth-secret --static-auth-secret="$secret" --realm=edgemeet.test \
  --no-tls --no-dtls --no-cli --fingerprint --simple-log --log-file=stdout \
  --allowed-peer-ip=10.77.0.0-10.77.255.255 >"$work/coturn.log" 2>&1 &

cat >"$work/edge.toml" <<EOF
listen = "0.0.0.0:8080"
web_dir = "$root/edge/web"
embed_media_node = false

[edge.turn]
urls = ["turn:10.77.1.1:3478?transport=udp", "turn:10.77.2.1:3478?transport=udp"]
secret = "$secret"
ttl_s = 600
EOF
ip netns exec "$t" "$bin_dir/edgemeet" --config "$work/edge.toml" >"$work/edge.log" 2>&1 &
for _ in $(seq 1 100); do
  ip netns exec "$a" curl -fsS -o /dev/null http://10.77.1.1:8080/healthz 2>/dev/null && break
  sleep 0.1
done

room="turn-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
status=0
ip netns exec "$a" node tests/browser/turn-peer.mjs http://10.77.1.1:8080 "$room" Ada >"$work/a.json" 2>"$work/a.err" &
pa=$!
sleep 1
ip netns exec "$b" node tests/browser/turn-peer.mjs http://10.77.2.1:8080 "$room" Bob >"$work/b.json" 2>"$work/b.err" &
pb=$!
wait "$pa" || status=1
wait "$pb" || status=1

python3 - "$work/a.json" "$work/b.json" <<'PY' || status=1
import json, sys
ok = True
for path in sys.argv[1:]:
    try:
        r = json.loads(open(path).read().strip().splitlines()[-1])
    except Exception as e:
        print(f"FAIL {path}: no result ({e})"); ok = False; continue
    decoding = any(v > 0 for v in r["frames"].values())
    relayed = "relay" in (r["local"], r["remote"])
    creds = any(s.get("username") == "set" for s in r["iceServers"])
    print(f"{r['name']}: pair {r['local']} -> {r['remote']} ({r.get('relayProtocol')}), "
          f"{r['bytesReceived']} bytes, video frames {r['frames']}, audio packets {r['audioPackets']}, "
          f"TURN credentials from the edge: {creds}")
    if not (decoding and relayed and creds and r["audioPackets"] > 0):
        print(f"FAIL {r['name']}: expected video and audio through a relay candidate"); ok = False
sys.exit(0 if ok else 1)
PY
allocations=$(grep -c "ALLOCATE processed, success" "$work/coturn.log" || true)
relayed=$(grep -c "peer 10.77" "$work/coturn.log" || true)
echo "coturn: $allocations successful allocations"
[ "$allocations" -gt 0 ] || { echo "FAIL: coturn allocated nothing"; status=1; }

if [ "$status" != 0 ]; then
  for f in a.err b.err edge.log; do echo "--- $f"; tail -n 30 "$work/$f"; done
  echo "--- coturn.log"; tail -n 40 "$work/coturn.log"
  exit 1
fi
echo "turn: two isolated browsers met through the relay"
