#!/usr/bin/env bash
# Installs the Debian programs Sonora runs or is tested with, when missing: ffmpeg (the demo's
# audio, probing, the suite's generated audio), make and gcc (the native core), chromium (the
# browser tests; Playwright drives Debian's build and never downloads one), mpv (a real player
# in the streaming tests) and Node.js with npm (the subsonic-api client library the Subsonic
# tests install and drive). `make run` and `make test` call it; safe to run again; changes nothing
# when all are there. Usage: scripts/packages.sh [run|test] (run needs only ffmpeg).
set -euo pipefail

want=(ffmpeg:ffmpeg make:make gcc:gcc)
if [ "${1:-test}" = "test" ]; then
  want+=(chromium:/usr/bin/chromium mpv:mpv nodejs:node npm:npm)
fi

need=()
for pair in "${want[@]}"; do
  pkg=${pair%%:*} exe=${pair#*:}
  if [[ $exe == /* ]]; then [ -x "$exe" ] || need+=("$pkg"); else command -v "$exe" >/dev/null || need+=("$pkg"); fi
done
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != "0" ]; then
  echo "packages: ${need[*]} missing and not root; install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "packages: installing ${need[*]} from Debian"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
