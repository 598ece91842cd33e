#!/usr/bin/env bash
# VAE Lab for a class on one machine: Redis, REPLICAS app processes, WORKERS training workers, nginx in front.
#
#   deploy/run-class.sh [REPLICAS] [WORKERS] [PORT]      (defaults: 3 replicas, 4 workers, port 8080)
#
# Browsers go to http://THIS-HOST:PORT. The replicas listen on 127.0.0.1 from FIRST_APP_PORT (default 8501) up;
# REDIS_PORT (default 6390) is a Redis of its own, unless VAE_LAB_QUEUE names one already running. The other
# VAE_LAB_* variables (README, "Hosting a class") reach every process. Run it in the virtual environment of the
# README's Setup. Ctrl-C (or SIGTERM) ends them all; a worker finishes the job it trains first.
set -euo pipefail

REPLICAS=${1:-3}
WORKERS=${2:-4}
PORT=${3:-8080}
FIRST_APP_PORT=${FIRST_APP_PORT:-8501}
REDIS_PORT=${REDIS_PORT:-6390}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in nginx redis-server; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y nginx redis-server" >&2; exit 1; }
done
RUN=$(mktemp -d "${TMPDIR:-/tmp}/vae-lab-class.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$RUN"' EXIT
trap 'exit 0' INT TERM

if [ -z "${VAE_LAB_QUEUE:-}" ]; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN" >"$RUN/redis.log" &
    export VAE_LAB_QUEUE="redis://127.0.0.1:$REDIS_PORT/0"
    until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
fi
python -m vae_core worker --queue "$VAE_LAB_QUEUE" --workers "$WORKERS" &
echo "workers: $WORKERS (pid $!) on $VAE_LAB_QUEUE"

for ((i = 0; i < REPLICAS; i++)); do
    port=$((FIRST_APP_PORT + i))
    python -m streamlit run app.py --server.headless true --server.address 127.0.0.1 --server.port "$port" \
        --server.fileWatcherType none >"$RUN/replica-$port.log" 2>&1 &
    echo "replica $((i + 1)): http://127.0.0.1:$port (pid $!, log $RUN/replica-$port.log)"
    echo "server 127.0.0.1:$port;" >>"$RUN/replicas.conf"
done
echo "listen $PORT;" >"$RUN/listen.conf"
cp deploy/nginx.conf "$RUN/"
mkdir -p "$RUN/tmp"
nginx -p "$RUN" -c nginx.conf -e stderr -t -q
nginx -p "$RUN" -c nginx.conf -e stderr -g "daemon off;" &
echo "nginx: http://0.0.0.0:$PORT (pid $!, access log $RUN/access.log)"
wait
