#!/usr/bin/env bash
# System packages the test suite needs (Debian): GStreamer's RTSP server for real-camera tests, Chromium
# (headless) for the browser tests of the dashboard and the reports.
# Installs only what is missing, so a machine that has them never touches apt.
set -euo pipefail
PACKAGES=(
  gir1.2-gst-rtsp-server-1.0 python3-gi
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  chromium fonts-dejavu-core
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
