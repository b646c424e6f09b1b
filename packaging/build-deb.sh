#!/usr/bin/env bash
# Builds the telestra Debian package from binaries that are already built
# (no Bazel, no network): the layer under scripts/package.sh, which builds
# the binaries -c opt first, and what tests/package runs inside a Bazel
# test with the binaries of its data dependencies.
#
#   packaging/build-deb.sh --gateway FILE [--cli FILE] --version VERSION \
#       --output DIR [--web DIR] [--source DIR] [--no-strip]
#
#   --gateway   //gateway:telestra_gateway          -> /usr/sbin/telestra_gateway
#   --cli       //cli:telestra (optional)           -> /usr/bin/telestra
#   --web       the dashboard's files (default SOURCE/web)
#                                                   -> /usr/share/telestra/web/
#   --source    the repository (default: this script's folder's parent): the
#               unit, the default plan, the maintainer scripts and the docs
#   --version   the Debian version (scripts/package.sh: git describe or VERSION)
#   --output    folder for telestra_VERSION_ARCH.deb (its path is printed last)
#
# Depends is computed by dpkg-shlibdeps from the binaries' shared libraries
# (plus what the maintainer scripts and the unit run: adduser, procps,
# init-system-helpers). Every file is root:root (dpkg-deb --root-owner-group).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
fail() {
  echo "build-deb: $*" >&2
  exit 1
}

gateway="" cli="" web="" version="" output="" strip=1
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
while (($#)); do
  case $1 in
    --gateway) gateway=$2; shift 2 ;;
    --cli) cli=$2; shift 2 ;;
    --web) web=$2; shift 2 ;;
    --source) source_dir=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --no-strip) strip=0; shift ;;
    -h | --help) usage ;;
    *) echo "build-deb: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ -n $gateway && -n $version && -n $output ]] || usage
web=${web:-$source_dir/web}
[[ -x $gateway ]] || fail "the gateway '$gateway' is not an executable file"
[[ -z $cli || -x $cli ]] || fail "the CLI '$cli' is not an executable file"
[[ -f $web/index.html ]] || fail "no dashboard in '$web' (web/index.html)"
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || fail "'$version' is not a Debian version"
for tool in dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs dpkg-dev)"
done
packaging=$source_dir/packaging
for file in telestra.service plan.ini postinst prerm postrm copyright; do
  [[ -f $packaging/$file ]] || fail "missing $packaging/$file"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/telestra-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# dh's layout: the package's files in debian/telestra beside debian/control
# (which dpkg-shlibdeps reads).
root=$work/debian/telestra
umask 022

# Files: install -D FILE MODE DEST (DEST relative to the package root).
put() {
  install -D -m "$2" "$1" "$root/$3"
}
put "$gateway" 0755 usr/sbin/telestra_gateway
if [[ -n $cli ]]; then put "$cli" 0755 usr/bin/telestra; fi
if ((strip)) && command -v strip >/dev/null; then
  strip --strip-unneeded "$root/usr/sbin/telestra_gateway" ${cli:+"$root/usr/bin/telestra"}
fi
# The dashboard: every file (Bazel's runfiles hold symlinks), not BUILD files.
while IFS= read -r -d '' file; do
  relative=${file#"$web"/}
  put "$file" 0644 "usr/share/telestra/web/$relative"
done < <(find -L "$web" -type f ! -name 'BUILD*' -print0)
put "$packaging/plan.ini" 0644 etc/telestra/plan.ini
put "$packaging/telestra.service" 0644 lib/systemd/system/telestra.service
doc=usr/share/doc/telestra
put "$packaging/copyright" 0644 "$doc/copyright"
if [[ -f $source_dir/README.md ]]; then put "$source_dir/README.md" 0644 "$doc/README.md"; fi
if [[ -f $source_dir/examples/plan.ini ]]; then
  put "$source_dir/examples/plan.ini" 0644 "$doc/examples/plan.ini"
fi
# The operator's documents (README.md links them as docs/...).
for name in deployment configuration restart native-api grpc-api websocket-api metrics audio cli; do
  if [[ -f $source_dir/docs/$name.md ]]; then put "$source_dir/docs/$name.md" 0644 "$doc/docs/$name.md"; fi
done
[[ -f $root/$doc/docs/deployment.md ]] || fail "missing $source_dir/docs/deployment.md"

# Control files.
mkdir -p "$root/DEBIAN"
for script in postinst prerm postrm; do put "$packaging/$script" 0755 "DEBIAN/$script"; done
echo /etc/telestra/plan.ini >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"

# Depends from the binaries' NEEDED libraries, as dh_shlibdeps does it.
printf 'Source: telestra\n\nPackage: telestra\nArchitecture: any\n' >"$work/debian/control"
binaries=("$root/usr/sbin/telestra_gateway")
if [[ -n $cli ]]; then binaries+=("$root/usr/bin/telestra"); fi
shlibs=$(cd "$work" && dpkg-shlibdeps --warnings=0 -O "${binaries[@]/#/-e}") ||
  fail "dpkg-shlibdeps could not compute the dependencies"
shlibs=${shlibs#shlibs:Depends=}
[[ -n $shlibs ]] || fail "dpkg-shlibdeps found no dependencies"

architecture=$(dpkg --print-architecture)
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
maintainer="${DEBFULLNAME:-Telestra SIP Gateway maintainers} <${DEBEMAIL:-telestra@localhost}>"
if [[ -n $cli ]]; then
  cli_line=" The telestra command-line client (gRPC) is in /usr/bin/telestra."
else
  cli_line=" This build carries no command-line client."
fi
cat >"$root/DEBIAN/control" <<EOF
Package: telestra
Version: $version
Architecture: $architecture
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $shlibs, adduser, init-system-helpers, procps
Section: net
Priority: optional
Description: Telestra SIP Gateway: SIP accounts for applications
 Keeps SIP accounts registered with a SIP server (Cisco CUCM, Kamailio, ...)
 and lets applications place, answer and control calls over a native TCP
 port (null-terminated JSON), gRPC, and a WebSocket with a browser
 dashboard.
 .
 Runs as the systemd service telestra (user telestra, configured by
 /etc/telestra/plan.ini); see /usr/share/doc/telestra/docs/deployment.md.
$cli_line
EOF
chmod 0644 "$root/DEBIAN/control"

# No file writable by anyone but root, whatever umask the sources had.
find "$root" -type d -exec chmod 0755 {} +

mkdir -p "$output"
deb="$output/telestra_${version}_${architecture}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
