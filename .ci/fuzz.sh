#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of every parser target in fuzz/: each runs
# for FUZZ_SECONDS (default 15) from seeds taken from ../shared/fixtures (and the repository's
# own samples) and fails the run on a crash, a panic, a timeout or an out-of-memory.
#   FUZZ_SECONDS=600 bash .ci/fuzz.sh            # longer
#   FUZZ_TARGETS="dpkg_status vex" bash .ci/fuzz.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz
# libFuzzer's instrumentation needs nightly flags; the stable toolchain accepts them so.
export RUSTC_BOOTSTRAP=1
fixtures="${STELLA_FIXTURES:-$root/../shared/fixtures}"
seconds="${FUZZ_SECONDS:-15}"
target_dir="${CARGO_TARGET_DIR:-$root/target}/fuzz"
declare -A seeds=(
    [dpkg_status]="dpkg"
    [apk_installed]="apk"
    [rpm_database]="rpmdb"
    [npm_manifest]="lang/npm"
    [python_metadata]="lang/python"
    [java_archive]="lang/java"
    [go_buildinfo]="lang/go"
    [elf]="lang/go lang/rust"
    [dotnet_deps]="lang/dotnet"
    [rust_auditable]="lang/rust"
    [advisories]="advisories osv-go"
    [version_compare]="version-vectors"
    [vex]="schemas/openvex/examples schemas/csaf-2.0"
    [policy]=""
)
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
if [ -z "${FUZZ_TARGETS:-}" ]; then
    cargo fuzz build -O --target-dir "$target_dir"
else
    for target in $targets; do cargo fuzz build -O --target-dir "$target_dir" "$target"; done
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $targets; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    for dir in ${seeds[$target]:-}; do
        [ -d "$fixtures/$dir" ] || { echo "fuzz: no seeds at $fixtures/$dir (fixtures absent?)"; continue; }
        find "$fixtures/$dir" -type f -size -3M -print0 | while IFS= read -r -d '' f; do
            cp "$f" "$corpus/$(printf '%s' "$f" | sha256sum | cut -c1-16)"
        done
    done
    case "$target" in
        policy) cp "$root"/config/samples/policy.yaml "$root"/config/samples/invalid/*.yaml "$corpus/" 2>/dev/null || true ;;
        elf) cp /bin/true "$corpus/true" ;;
    esac
    echo "fuzz: $target for ${seconds}s from $(ls "$corpus" | wc -l) seeds"
    rc=0
    cargo fuzz run -O --target-dir "$target_dir" "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=3145728 -timeout=10 \
        -print_final_stats=1 >"$work/$target.log" 2>&1 || rc=$?
    grep -E '^stat::number_of_executed_units' "$work/$target.log" || true
    if [ "$rc" -ne 0 ]; then
        tail -40 "$work/$target.log"
        echo "fuzz: $target failed (the input is under fuzz/artifacts/$target)"
        exit 1
    fi
done
echo "fuzz: all targets ran ${seconds}s without a failure"
