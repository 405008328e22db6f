#!/usr/bin/env bash
# Installs what the console's browser test (server/tests/http/console.rs) needs, on Debian
# bookworm (or later), as root: chromium and chromium-driver, Debian packages (about 300 MB
# installed). The test drives the browser through chromedriver over WebDriver from Rust, so
# nothing else is downloaded, then or at test time. (Ubuntu's chromium is a snap, which does not
# run in most containers: there, install Google's chrome and chromedriver and point CHROME_BIN
# and CHROMEDRIVER at them.) Idempotent: what is already installed is left alone. Quiet unless
# something fails; then the test says it skips.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    # Another apt may hold the lock (unattended upgrades, a parallel build): wait for it.
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes \
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
command -v chromedriver >/dev/null
