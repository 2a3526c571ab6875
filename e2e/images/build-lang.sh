#!/usr/bin/env bash
# Builds a real two-layer image of language packages, for the scanner tests:
#   layer 1: `pip install --target /app/python requests==2.31.0` (and its dependencies)
#   layer 2: `npm install --prefix /app/web lodash@4.17.20 @babel/code-frame@7.22.5` (scoped and
#            nested installs)
#   layer 3: Debian's commons-lang3 jar, and a war holding Debian's commons-io and guava jars
#            in WEB-INF/lib (nested archives)
#   layer 4: Go binaries: Debian's umoci (GOPATH build: toolchain version only) and a module
#            build of a small program (main module in build info)
# Expected packages come from `pip list --path` and `npm ls --all --json`, never from our
# output. Cached: ${STELLA_CACHE:-~/.cache/stella}/images/lang/.
set -euo pipefail

cache="${STELLA_CACHE:-$HOME/.cache/stella}/images"
out="$cache/lang"
[[ -f "$out/done" ]] && { echo "lang image: cached at $out"; exit 0; }
mkdir -p "$cache"
exec 9>"$cache/.lang-build.lock"
flock 9
[[ -f "$out/done" ]] && exit 0

need=()
command -v umoci >/dev/null || need+=(umoci)
command -v npm >/dev/null || need+=(npm)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
[[ -f /usr/share/java/commons-lang3.jar ]] || need+=(libcommons-lang3-java)
[[ -f /usr/share/java/commons-io.jar ]] || need+=(libcommons-io-java)
[[ -f /usr/share/java/guava.jar ]] || need+=(libguava-java)
command -v go >/dev/null || need+=(golang-go)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d "$cache/lang-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:lang"
umoci unpack --rootless --image "$layout:lang" "$work/bundle" >/dev/null
root="$work/bundle/rootfs"

python3 -m pip install --quiet --no-compile --disable-pip-version-check \
    --target "$root/app/python" requests==2.31.0
python3 -m pip list --disable-pip-version-check --path "$root/app/python" --format=json |
    python3 -c 'import json,sys; [print(p["name"], p["version"]) for p in json.load(sys.stdin)]' |
    LC_ALL=C sort > "$work/expected-pypi.txt"
umoci repack --refresh-bundle --image "$layout:lang" "$work/bundle" >/dev/null

mkdir -p "$root/app/web"
echo '{"name": "web", "version": "1.0.0", "private": true}' > "$root/app/web/package.json"
npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$root/app/web" \
    lodash@4.17.20 @babel/code-frame@7.22.5 >/dev/null
npm ls --all --json --prefix "$root/app/web" | python3 -c '
import json, sys
seen = set()
def walk(deps):
    for name, d in (deps or {}).items():
        if "version" in d:
            seen.add((name, d["version"]))
        walk(d.get("dependencies"))
walk(json.load(sys.stdin).get("dependencies"))
for name, version in sorted(seen):
    print(name, version)' > "$work/expected-npm.txt"
umoci repack --refresh-bundle --image "$layout:lang" "$work/bundle" >/dev/null

mkdir -p "$root/app/java/lib"
cp -L /usr/share/java/commons-lang3.jar "$root/app/java/lib/commons-lang3.jar"
# The expected coordinates are read straight from each archive's pom.properties.
python3 - "$root/app/java" > "$work/expected-maven.txt" <<'PY'
import io, sys, zipfile
root = sys.argv[1]
with zipfile.ZipFile(f"{root}/app.war", "w") as war:
    war.writestr("META-INF/maven/com.example/app/pom.properties",
                 "groupId=com.example\nartifactId=app\nversion=1.0.0\n")
    for jar in ("commons-io", "guava"):
        war.write(f"/usr/share/java/{jar}.jar", f"WEB-INF/lib/{jar}.jar")
found = set()
def walk(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.endswith("/pom.properties"):
                props = dict(l.split("=", 1) for l in z.read(name).decode().splitlines()
                             if "=" in l and not l.startswith("#"))
                found.add(f"{props['groupId'].strip()}:{props['artifactId'].strip()} {props['version'].strip()}")
            elif name.endswith(".jar"):
                walk(z.read(name))
for path in (f"{root}/lib/commons-lang3.jar", f"{root}/app.war"):
    walk(open(path, "rb").read())
print("\n".join(sorted(found)))
PY
umoci repack --refresh-bundle --image "$layout:lang" "$work/bundle" >/dev/null

mkdir -p "$root/usr/local/bin" "$work/hello"
install -m 0755 "$(command -v umoci)" "$root/usr/local/bin/umoci"
printf 'module example.com/hello\n\ngo 1.19\n' > "$work/hello/go.mod"
printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n' > "$work/hello/main.go"
(cd "$work/hello" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$work/gocache" go build -o "$root/usr/local/bin/hello" .)
# Expected: what `go version -m` reports (the toolchain as stdlib, main module, deps).
for bin in umoci hello; do
    go version -m "$root/usr/local/bin/$bin" | python3 -c '
import sys
lines = sys.stdin.read().splitlines()
print("stdlib", "v" + lines[0].split(": ", 1)[1].removeprefix("go"))
for line in lines[1:]:
    f = line.strip().split("\t")
    if f[0] in ("mod", "dep"):
        print(f[1], "" if f[2] == "(devel)" else f[2])'
done | LC_ALL=C sort > "$work/expected-go.txt"
umoci repack --refresh-bundle --image "$layout:lang" "$work/bundle" >/dev/null
umoci gc --layout "$layout"
rm -rf "$out"
mkdir -p "$out"
mv "$layout" "$out/oci"
mv "$work"/expected-*.txt "$out/"
touch "$out/done"
echo "lang image: built $out"
