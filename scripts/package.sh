#!/usr/bin/env bash
# Builds the Debian package of the gateway (docs/deployment.md):
#
#   scripts/package.sh [--output DIR] [--version VERSION]
#
# installs what is missing (scripts/install-deps.sh), builds
# //gateway:telestra_gateway and //cli:telestra with -c opt, and puts them
# together with the dashboard, the default plan, the systemd unit and the
# docs into DIR/telestra_VERSION_ARCH.deb (DIR: dist/) with
# packaging/build-deb.sh. No network beyond Debian's archive.
#
# VERSION: `git describe` of the newest vX.Y.Z tag (v1.2.0 three commits
# back: 1.2.0+git3.gabc1234), else the VERSION file plus the commit count
# and hash (0.1.0+git240.a1747cd), else the VERSION file alone.
set -euo pipefail
cd "$(dirname "$0")/.."

output=dist
version=""
while (($#)); do
  case $1 in
    --output) output=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "package: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [[ -z $version ]]; then
  if describe=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    version=$(sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)$/+git\1.g\2/' <<<"$describe")
  elif [[ -f VERSION ]] && count=$(git rev-list --count HEAD 2>/dev/null); then
    version="$(<VERSION)+git${count}.$(git rev-parse --short HEAD)"
  elif [[ -f VERSION ]]; then
    version=$(<VERSION)
  else
    echo "package: no version: no vX.Y.Z tag and no VERSION file (or pass --version)" >&2
    exit 2
  fi
fi

scripts/install-deps.sh

# The command-line client is part of the package.
targets=(//gateway:telestra_gateway //cli:telestra)
if ! bazel query //cli:telestra >/dev/null 2>&1; then
  echo "package: //cli:telestra is missing (cli/BUILD.bazel): the package needs the command-line client" >&2
  exit 1
fi
# --symlink_prefix=/: bazel-bin & co. keep pointing at the default build.
bazel build -c opt --symlink_prefix=/ "${targets[@]}"
bin=$(bazel info -c opt bazel-bin 2>/dev/null)

mkdir -p "$output"
deb=$(packaging/build-deb.sh --gateway "$bin/gateway/telestra_gateway" --cli "$bin/cli/telestra" \
  --web web --version "$version" --output "$output")
echo "package: $deb"
dpkg-deb --field "$deb" Package Version Architecture Installed-Size
# apt installs a file given as a path ("./name.deb", not "name.deb").
[[ $deb == /* ]] || deb="./$deb"
echo "install: sudo apt install $deb   (then docs/deployment.md)"
