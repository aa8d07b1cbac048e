#!/bin/sh
# The Debian package (`make deb`): built with CPack from a build tree, then read with dpkg-deb:
# its control fields and maintainer scripts (-I, -e), its files (-c), and what they say once
# extracted (-x): the unit and logrotate name the installed paths, the packaged conf is valid,
# the manual pages format without a warning.
#
#   test_deb.sh BUILD_DIR SOURCE_DIR [install]
#
# With "install" the package is installed into this very system (dpkg -i), checked and purged:
# only as root and with CI set (a throw-away machine), since it adds a user and files under /etc
# and /usr; otherwise it says why and exits 77 (ctest: skipped).
set -eu
build=$1
source=$2
mode=${3:-contents}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

if [ "$mode" = install ] && { [ "$(id -u)" -ne 0 ] || [ -z "${CI:-}" ]; }; then
    echo "skipped: dpkg -i changes the real system (a user, /etc, /usr): it runs as root with CI" \
        "set only"
    exit 77
fi
command -v dpkg-deb >/dev/null || fail "dpkg-deb is not installed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/porter-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
    fail "cpack: $(tail -20 "$tmp/cpack.log")"
deb=$(ls "$tmp"/out/porter_*.deb)
version=$(sed -n 's/^project(porter VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")

# ---- control ----
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = porter ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), not $version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture"
depends=$(field Depends)
for d in libssl3 libev4 libnghttp2-14 zlib1g libbrotli1 libzstd1 media-types passwd; do
    case ", $depends," in *", $d"[\ ,]*) ;; *) fail "Depends lacks $d: $depends" ;; esac
done
dpkg-deb -I "$deb" >"$tmp/info"
for f in postinst prerm postrm conffiles triggers; do
    grep -q " $f" "$tmp/info" || fail "no $f in the control archive"
done
dpkg-deb -e "$deb" "$tmp/control"
[ "$(sort "$tmp/control/conffiles")" = "$(printf '/etc/logrotate.d/porter\n/etc/porter/porter.conf')" ] ||
    fail "conffiles: $(cat "$tmp/control/conffiles")"
# (continuation lines joined)
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$tmp/control/postinst" | grep -q 'useradd --system .* porter$' ||
    fail "postinst makes no user porter"
[ -x "$tmp/control/postinst" ] || fail "postinst is not executable"
sh -n "$tmp/control/postinst" && sh -n "$tmp/control/prerm" && sh -n "$tmp/control/postrm" ||
    fail "a maintainer script does not parse"

# ---- files ----
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' >"$tmp/files"
have() { grep -qx "$1" "$tmp/files" || fail "not in the package: $1"; }
have_like() { grep -q "$1" "$tmp/files" || fail "nothing like $1 in the package"; }
have /usr/sbin/porter
# The library, and its soname's link: libporter.so.MAJOR, libporter.so.0.MINOR before 1.0
# (docs/embedding.md, "Versions and ABI").
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
if [ "$major" = 0 ]; then
    soname=libporter.so.0.$minor
else
    soname=libporter.so.$major
fi
dots() { printf '%s' "$1" | sed 's/\./\\./g'; }
have_like "^/usr/lib/\\(.*/\\)\\?$(dots "libporter.so.$version")\$"
have_like "^/usr/lib/\\(.*/\\)\\?$(dots "$soname")\$"
have /usr/include/porter/version.h
have /usr/include/porter/export.h
have_like '^/usr/lib/\(.*/\)\?libporter\.a$'
have_like '^/usr/lib/\(.*/\)\?pkgconfig/porter\.pc$'
have_like '^/usr/lib/\(.*/\)\?cmake/porter/porterConfig\.cmake$'
have /usr/include/porter.h
have /usr/include/porter/connmgr/conn.h
have /usr/share/man/man8/porter.8.gz
have /usr/share/man/man5/porter.conf.5.gz
have /usr/lib/systemd/system/porter.service
have /etc/logrotate.d/porter
have /etc/porter/porter.conf
have /etc/porter/conf.d
have /var/www/porter/index.html
have /usr/share/doc/porter/nginx.md
! grep -q '^/usr/local\|/server/\|_private\.h$' "$tmp/files" || fail "stray files: $(grep '^/usr/local\|/server/\|_private\.h$' "$tmp/files")"

# ---- what the files say ----
root=$tmp/root
dpkg-deb -x "$deb" "$root"
unit=$root/usr/lib/systemd/system/porter.service
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
grep -qx 'ExecStart=/usr/sbin/porter -c /etc/porter/porter.conf' "$unit" || fail "ExecStart"
grep -qx 'ExecReload=/usr/sbin/porter -s reload -c /etc/porter/porter.conf' "$unit" ||
    fail "ExecReload"
grep -q 'CAP_NET_BIND_SERVICE' "$unit" || fail "the unit cannot bind port 80"
# systemd reads the unit without a complaint (an unknown or misspelt key is one), the
# executable it names being the packaged one.
if command -v systemd-analyze >/dev/null; then
    mkdir "$tmp/unit"
    sed "s|/usr/sbin/porter|$root/usr/sbin/porter|g" "$unit" >"$tmp/unit/porter.service"
    said=$(systemd-analyze verify --man=no "$tmp/unit/porter.service" 2>&1) ||
        fail "systemd-analyze verify: $said"
    [ -z "$said" ] || fail "systemd-analyze verify: $said"
fi
grep -q '/usr/sbin/porter -s reopen -c /etc/porter/porter.conf' "$root/etc/logrotate.d/porter" ||
    fail "logrotate does not reopen the logs"
grep -qx 'user porter;' "$root/etc/porter/porter.conf" || fail "the conf's user is not porter"
# The packaged conf is valid: checked by the packaged porter, with its paths moved under the
# extracted tree and its user made root (no user porter here).
sed -e "s|/etc/porter|$root/etc/porter|g; s|/var/www/porter|$root/var/www/porter|g" \
    -e "s|/var/log/porter|$tmp/log|g; s|/run/porter|$tmp|g; s|^user porter;|user root;|" \
    "$root/etc/porter/porter.conf" >"$tmp/porter.conf"
mkdir -p "$tmp/log"
"$root/usr/sbin/porter" -t -c "$tmp/porter.conf" >"$tmp/t.log" 2>&1 ||
    fail "the packaged conf: $(cat "$tmp/t.log")"
if command -v groff >/dev/null; then
    for page in man8/porter.8 man5/porter.conf.5; do
        warnings=$(zcat "$root/usr/share/man/$page.gz" | groff -man -Tutf8 -ww -z 2>&1)
        [ -z "$warnings" ] || fail "$page: $warnings"
    done
fi
echo "package: $(basename "$deb"): control, files and their contents as expected"

[ "$mode" = install ] || exit 0

# ---- into the system (root, CI) ----
dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$tmp/dpkg.log")"
getent passwd porter >/dev/null || fail "no user porter after dpkg -i"
[ -d /var/log/porter ] || fail "no /var/log/porter"
/usr/sbin/porter -V | grep -q "porter $version" || fail "the installed porter: $(/usr/sbin/porter -V)"
/usr/sbin/porter -t -c /etc/porter/porter.conf >"$tmp/t.log" 2>&1 ||
    fail "the installed conf: $(cat "$tmp/t.log")"
man -w porter.conf >/dev/null 2>&1 || [ ! -x /usr/bin/man ] || fail "man porter.conf"
dpkg --purge porter >"$tmp/dpkg.log" 2>&1 || fail "dpkg --purge: $(cat "$tmp/dpkg.log")"
[ ! -e /usr/sbin/porter ] && [ ! -e /etc/porter/porter.conf ] || fail "files left after --purge"
echo "package: installed, checked and purged"
