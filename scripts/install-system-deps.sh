#!/usr/bin/env bash
# Installs the system packages aifactory needs, when they are missing.
#   --run   what running a facility needs: bubblewrap, the sandbox every job runs in; runc and
#           tini (its static build), which run jobs in OCI images.
#   (none)  that, and what the test suite needs: PostgreSQL's server, and Slurm with munge,
#           slurmdbd and MariaDB's server binary (the tests start a real PostgreSQL server and
#           a real one-host Slurm cluster of their own, with accounting so that sacct works,
#           and socat, which relays a session's notebook server from a node),
#           Debian's Chromium, which the portal's browser tests drive headless, a static
#           busybox, from which the container tests make their images, and Node.js with npm,
#           which run the tests' OpenID provider (oidc-provider/).
# Debian/Ubuntu, as root or with sudo. Fast and silent when all is there.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; }

missing=()
have bwrap || missing+=(bubblewrap)
have runc || missing+=(runc)
[ -x /usr/bin/tini-static ] || missing+=(tini)
if [ "${1:-}" != "--run" ]; then
have_postgres || missing+=(postgresql)
have runuser || missing+=(util-linux)
have munged || missing+=(munge)
have slurmctld || missing+=(slurmctld)
have slurmd || missing+=(slurmd)
have slurmdbd || missing+=(slurmdbd)
have mariadbd || missing+=(mariadb-server-core)
have chromium || missing+=(chromium)
have socat || missing+=(socat)  # a Slurm node's relay to a session (docs/sessions.md)
# Node.js and npm run the tests' OpenID provider (oidc-provider/, tests/oidc_provider.py); it
# needs Node.js 20.19 or later, newer than Debian 12's own nodejs 18 (the tests say so).
have node || missing+=(nodejs)
have npm || missing+=(npm)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || missing+=(busybox-static)  # static
for tool in sbatch squeue sacct scontrol scancel sinfo; do
  have "$tool" || { missing+=(slurm-client); break; }
done
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1
fi
# Debian starts (and enables) the services it installs; the tests start their own, so keep them
# from starting (a policy-rc.d that says no, for the length of the install), then stop and
# disable those of the packages installed here (never a service that was there before).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap '$SUDO rm -f "$policy"' EXIT
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for service in "${missing[@]}"; do
  case "$service" in postgresql|munge|slurmctld|slurmd|slurmdbd) ;; *) continue ;; esac
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now "$service" >/dev/null 2>&1 || true
  else
    $SUDO service "$service" stop >/dev/null 2>&1 || true
  fi
done
