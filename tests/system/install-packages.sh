#!/usr/bin/env bash
# Debian packages some tests need: a real single-node SLURM cluster (tests/slurm) and
# headless Chromium (the report renders in a browser). Called by `make test`; installs
# only what is missing. Where installing is impossible (not root, no apt-get) it says
# so and exits 0: those tests then skip with that reason.
set -u
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "tests/system: cannot install ${missing[*]} (needs root and apt-get); their tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "tests/system: installing ${missing[*]}" >&2
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "tests/system: apt-get failed for ${missing[*]}; their tests will skip" >&2
fi
exit 0
