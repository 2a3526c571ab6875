#!/usr/bin/env bash
# Builds a real image whose entrypoint is a shell script, for the EntryTrace and usage-view tests:
#   layers 1-3: the Debian image of build-debian.sh (minbase bookworm, curl installed and purged)
#   layer 4: apt-get install python3-minimal in a chroot
#   layer 5: /docker-entrypoint.sh (POSIX sh) that sources /etc/app/env.sh, then by its first
#            argument execs `python3 -m app.server` (PYTHONPATH from the sourced file), a C
#            program linked to its own library through $ORIGIN, or "$@"; CMD ["serve"]
# The expected answer comes from the native tools, run at build time only, never by the
# scanner: `ldd` (inside the chroot) for the libraries the programs load, `dpkg -S` for the
# packages owning them, `readelf -n` for build-ids.
# Cached: ${STELLA_CACHE:-~/.cache/stella}/images/entry/. Needs root, gcc and Debian's mirror.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${STELLA_CACHE:-$HOME/.cache/stella}/images"
out="$cache/entry"
[[ -f "$out/done" ]] && { echo "entry image: cached at $out"; exit 0; }
bash "$here/build-debian.sh"
mkdir -p "$cache"
exec 9>"$cache/.entry-build.lock"
flock 9
[[ -f "$out/done" ]] && exit 0

work=$(mktemp -d "$cache/entry-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout="$work/oci"
cp -a "$cache/debian-bookworm/oci" "$layout"
umoci unpack --image "$layout:bookworm" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"

echo "entry image: apt-get install python3-minimal (layer 4)"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -qq
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
umoci repack --refresh-bundle --image "$layout:bookworm" "$work/bundle" >/dev/null

echo "entry image: the entrypoint script, the Python app, the C program (layer 5)"
mkdir -p "$rootfs/etc/app" "$rootfs/opt/app/lib/app" "$rootfs/opt/app/bin" "$work/c"
cat > "$rootfs/docker-entrypoint.sh" <<'SH'
#!/bin/sh
set -e
# Settings shared with the health check.
. /etc/app/env.sh

if [ "$1" = "serve" ]; then
    exec python3 -m app.server --port "${APP_PORT:-8080}"
fi
case "$1" in
    greet) exec "$APP_HOME/bin/greeter" ;;
esac
exec "$@"
SH
chmod 0755 "$rootfs/docker-entrypoint.sh"
cat > "$rootfs/etc/app/env.sh" <<'SH'
APP_HOME=/opt/app
PYTHONPATH="$APP_HOME/lib"
export APP_HOME PYTHONPATH
SH
echo '' > "$rootfs/opt/app/lib/app/__init__.py"
printf 'import http.server\n\nif __name__ == "__main__":\n    http.server.test()\n' > "$rootfs/opt/app/lib/app/server.py"
printf '#include <stdio.h>\nvoid greet(void) { puts("hello"); }\n' > "$work/c/greet.c"
printf 'void greet(void);\nint main(void) { greet(); return 0; }\n' > "$work/c/main.c"
(cd "$work/c" &&
    gcc -shared -fPIC -Wl,-soname,libgreet.so.1 -o libgreet.so.1 greet.c &&
    ln -s libgreet.so.1 libgreet.so &&
    gcc -o greeter main.c -L. -lgreet '-Wl,-rpath,$ORIGIN/../lib')
install -m 0755 "$work/c/greeter" "$rootfs/opt/app/bin/greeter"
install -m 0644 "$work/c/libgreet.so.1" "$rootfs/opt/app/lib/libgreet.so.1"

# Expected: the programs the entrypoint can run (as invoked: /bin/sh from the #! line, python3
# found on PATH, the C program), the files they load, and the packages owning either.
{
    for program in /bin/sh /usr/bin/python3 /opt/app/bin/greeter; do
        echo "$program"
        chroot "$rootfs" readlink -f "$program"
        chroot "$rootfs" /usr/bin/ldd "$program" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}' |
            while read -r lib; do chroot "$rootfs" readlink -f "$lib"; done
    done
} | LC_ALL=C sort -u > "$work/expected-usage-files.txt"
while read -r file; do
    # dpkg -S knows a path as the package listed it (/lib/… before usrmerge).
    chroot "$rootfs" dpkg -S "$file" 2>/dev/null || chroot "$rootfs" dpkg -S "${file#/usr}" 2>/dev/null || echo "bin $file"
done < "$work/expected-usage-files.txt" | grep -v '^diversion' | sed 's/: .*//; s/:amd64//' | tr ',' '\n' | sed 's/^ *//' | LC_ALL=C sort -u > "$work/expected-usage-packages.txt"
readelf -nW "$rootfs/opt/app/bin/greeter" | sed -n 's/.*Build ID: //p' > "$work/expected-greeter-build-id.txt"
umoci repack --refresh-bundle --image "$layout:bookworm" "$work/bundle" >/dev/null
umoci config --image "$layout:bookworm" --config.entrypoint /docker-entrypoint.sh --config.cmd serve \
    --config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' >/dev/null
umoci gc --layout "$layout"

skopeo copy --quiet "oci:$layout:bookworm" "docker-archive:$work/image.tar:stella-test/entry:latest"
rm -rf "$out"
mkdir -p "$out"
mv "$work/image.tar" "$out/image.tar"
mv "$work"/expected-*.txt "$out/"
touch "$out/done"
echo "entry image: built $out"
