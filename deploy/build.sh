#!/bin/sh
# The build steps of the container image (deploy/Dockerfile runs this script in its build
# stage), kept in a script so that CI runs the very same steps on a machine with no container
# runtime (scripts/test). Builds `latchkey` and lays out the image's files under OUT:
#   OUT/usr/local/bin/latchkey   the binary
#   OUT/var/lib/latchkey/        the data directory (owned by the runtime user in the image)
#   OUT/var/backups/latchkey/    where scheduled backups go (likewise)
# Usage: deploy/build.sh OUT   (LATCHKEY_BUILD_PROFILE=dev for a quicker unoptimised build)
set -eu
out="${1:?usage: deploy/build.sh OUT}"
profile="${LATCHKEY_BUILD_PROFILE:-release}"
cd "$(dirname "$0")/.."
cargo build --locked --profile "$profile" --bin latchkey
case "$profile" in
  dev) dir=debug ;;
  *) dir="$profile" ;;
esac
bin="${CARGO_TARGET_DIR:-target}/$dir/latchkey"
install -D -m 0755 "$bin" "$out/usr/local/bin/latchkey"
install -d -m 0700 "$out/var/lib/latchkey" "$out/var/backups/latchkey"
"$out/usr/local/bin/latchkey" --version
