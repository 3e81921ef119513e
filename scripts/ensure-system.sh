#!/usr/bin/env bash
# Make sure what the test suite needs outside Python is there: a running PostgreSQL server
# (if one is installed on this machine) and Debian packages (SoftHSM2 for PKCS#11, oathtool
# as an independent TOTP client, Chromium for the console's browser tests). Installs only when missing and only when it can (root + apt).
set -u
need_pkgs=()
command -v softhsm2-util >/dev/null 2>&1 || need_pkgs+=(softhsm2)
command -v oathtool >/dev/null 2>&1 || need_pkgs+=(oathtool)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${need_pkgs[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}") >/dev/null \
      || echo "warning: could not install ${need_pkgs[*]}" >&2
  else
    echo "warning: missing ${need_pkgs[*]} (install them with your package manager)" >&2
  fi
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
      echo "starting PostgreSQL $version/main"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || echo "warning: PostgreSQL did not start" >&2
    fi
  done
fi
exit 0
