#!/usr/bin/env bash
# Builds the operator, worker and webhook images with buildah from config/images/Containerfile
# and the binaries cargo built on this machine, writes each as a docker-archive tar tagged
# stella-ops/<name>:<version>, and checks each with config/images/check.sh. `make images`
# runs it after `cargo build`.
#
#   build.sh --profile release|debug --version 0.1.0 --target-dir target --out DIR
#
# Output: DIR/operator.tar, DIR/worker.tar, DIR/webhook.tar and DIR/images.txt (tag, file,
# image id). An image is rebuilt only when its inputs changed (the binary, the base layer, the
# Containerfile, these scripts, the version): the key is kept beside each tar. Needs root
# (buildah's storage, chroot in the check) and Debian's buildah, skopeo and umoci.
set -euo pipefail
export LC_ALL=C

profile=release
version=""
target_dir=target
out=""
while (($#)); do
    case "$1" in
        --profile) profile=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        --target-dir) target_dir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$profile" in release | debug) ;; *) echo "build.sh: --profile must be release or debug" >&2; exit 2 ;; esac
[[ -n "$version" && -n "$out" ]] || { echo "build.sh: --version and --out are required" >&2; exit 2; }
((EUID == 0)) || { echo "build.sh: needs root (buildah storage, chroot in the check)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)

need=()
for tool in buildah skopeo umoci; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    echo "build.sh: missing ${need[*]} (apt-get install ${need[*]}; .ci/install-deps.sh does)" >&2
    exit 1
fi

declare -A binary=([operator]=stella-operator [worker]=stella-worker [webhook]=stella-webhook)
for image in operator worker webhook; do
    path="$target_dir/$profile/${binary[$image]}"
    [[ -x "$path" ]] || {
        echo "build.sh: $path not built (cargo build$([[ $profile == release ]] && echo ' --release') -p stella-operator -p stella-cli -p stella-webhook --bins)" >&2
        exit 1
    }
done

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
context="$out/context"
rm -rf "$context"
mkdir -p "$context/$profile"
for image in operator worker webhook; do
    # Hard links when the target directory is on the same filesystem; a copy otherwise.
    ln -f "$target_dir/$profile/${binary[$image]}" "$context/$profile/" 2>/dev/null \
        || cp "$target_dir/$profile/${binary[$image]}" "$context/$profile/"
done
bash "$here/build-base.sh" "$context/base.tar" "$context/$profile"/stella-*

storage="$out/storage"
buildah_() {
    buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"
}
built=0
started=$(date +%s)
: > "$out/images.txt.partial"
for image in operator worker webhook; do
    tag="stella-ops/$image:$version"
    key=$(cat "$context/$profile/${binary[$image]}" "$context/base.tar" "$here/Containerfile" \
        "$here/build.sh" "$here/build-base.sh" "$here/check.sh" <(echo "$version $profile") | sha256sum | cut -d' ' -f1)
    if [[ -f "$out/$image.tar" && "$(cat "$out/$image.key" 2>/dev/null)" == "$key" ]]; then
        echo "images: $tag unchanged ($out/$image.tar)"
    else
        rm -f "$out/$image.key"
        echo "images: building $tag ($profile binaries)"
        # --timestamp 0: the same inputs give the same layers and image id.
        buildah_ bud --quiet --isolation chroot --timestamp 0 --target "$image" \
            --build-arg "PROFILE=$profile" --build-arg "VERSION=$version" \
            -f "$here/Containerfile" -t "docker.io/$tag" "$context" >/dev/null
        rm -f "$out/$image.tar.partial"
        buildah_ push --quiet "docker.io/$tag" "docker-archive:$out/$image.tar.partial:$tag"
        mv "$out/$image.tar.partial" "$out/$image.tar"
        bash "$here/check.sh" "$out/$image.tar" "${binary[$image]}" "$version"
        echo "$key" > "$out/$image.key"
        built=$((built + 1))
    fi
    id=$(tar -xOf "$out/$image.tar" manifest.json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Config"].removesuffix(".json"))')
    echo "$tag $out/$image.tar sha256:$id $(du -m "$out/$image.tar" | cut -f1)MB" >> "$out/images.txt.partial"
done
mv "$out/images.txt.partial" "$out/images.txt"
# buildah's storage only carried the build; the archives are the output.
rm -rf "$storage" "$context"
echo "images: $built built in $(($(date +%s) - started)) s; $out/images.txt:"
cat "$out/images.txt"
