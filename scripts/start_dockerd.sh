#!/usr/bin/env bash
# Starts a Docker engine on a machine without systemd (containers, CI runners, bare VMs) and waits
# until `docker info` answers. Idempotent: when an engine already answers, it does nothing.
#   scripts/start_dockerd.sh            # install docker.io with apt-get if dockerd is missing
# Environment:
#   DOCKERD_LOG   where dockerd writes its log   (default /tmp/dockerd.log)
#   DOCKERD_WAIT  seconds to wait for the engine  (default 60)
#   DOCKERD_NO_INSTALL=1  never call apt-get; fail when dockerd is missing
# Exit status: 0 when `docker info` works at the end, 1 otherwise (with the reason on stderr).
set -euo pipefail

log=${DOCKERD_LOG:-/tmp/dockerd.log}
wait_s=${DOCKERD_WAIT:-60}

say() { echo "start_dockerd: $*" >&2; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  say "a Docker engine already answers"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "${DOCKERD_NO_INSTALL:-0}" = 1 ]; then
    say "dockerd is not installed and DOCKERD_NO_INSTALL=1"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "dockerd is not installed and there is no apt-get to install it"
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    say "dockerd is not installed and installing docker.io needs root"
    exit 1
  fi
  say "installing docker.io with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q docker.io >&2
fi

if [ "$(id -u)" != 0 ]; then
  say "starting dockerd needs root (or ask an administrator to start the engine)"
  exit 1
fi

# A dockerd of ours may be running but not answering yet (a previous call still starting it):
# only start a new one when none runs, so two calls never fight over /var/run/docker.pid.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $log)"
  # setsid + nohup: the engine outlives this script and the shell that called it.
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$wait_s"); do
  if docker info >/dev/null 2>&1; then
    say "Docker engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within ${wait_s}s; last lines of $log:"
tail -n 20 "$log" >&2 || true
exit 1
