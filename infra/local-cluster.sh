#!/usr/bin/env bash
# Runs a local synod group without containers: one nats-server and three `synod node start`
# processes, data under ./data/<node>. Ctrl-C (or SIGTERM) stops everything.
#   infra/local-cluster.sh [--group mokka] [--port 4222] [--data ./data]
set -euo pipefail
group=mokka port=4222 data=./data
while [ $# -gt 0 ]; do
  case "$1" in
    --group) group=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    *) echo "usage: $0 [--group NAME] [--port PORT] [--data DIR]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
synod="$root/packages/cli/dist/main.js"
[ -f "$synod" ] || { echo "build first: npm ci (or npm run build)" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "nats-server not found: apt-get install nats-server" >&2; exit 1; }

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

nats-server -a 127.0.0.1 -p "$port" >"$data.nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
for id in a b c; do
  node "$synod" node start --id "$id" --group "$group" --peers a,b,c --nats "nats://127.0.0.1:$port" --data "$data/$id" &
  pids+=($!)
done
echo "group $group: nodes a, b, c on nats://127.0.0.1:$port (Ctrl-C stops)"
echo "try: npx synod kv put --group $group --nats nats://127.0.0.1:$port k v && npx synod status --group $group --nats nats://127.0.0.1:$port"
wait
