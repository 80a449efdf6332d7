#!/bin/sh
# sdwrap's demo: a flaky server kept working by sdwrap in local (--no-systemd) mode. Ctrl-C ends it.
# Run from the repository root after `npm run build` (npm run demo does both). Extra sdwrap flags may
# follow: sh examples/demo.sh --log-format json
PORT="${PORT:-8787}"
exec node bin/sdwrap.js --no-systemd \
  --http "http://127.0.0.1:${PORT}/healthz" --interval 1s --timeout 500ms --failure-threshold 2 \
  --start-period 10s --stop-timeout 2s \
  --restart-delay 1s --restart-max-delay 10s --max-restarts 20 --restart-window 5min --restart-reset 30s "$@" \
  -- node examples/flaky-server.mjs --port "$PORT"
