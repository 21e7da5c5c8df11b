#!/usr/bin/env bash
# Checks the deployment files in infra/: systemd units with `systemd-analyze verify` (and their
# sandboxing with `systemd-analyze security`), cloud-init user-data against cloud-init's schema.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir="${EDGEMEET_BIN_DIR:-target/debug}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

for unit in infra/systemd/*.service; do
  name=$(basename "$unit")
  # Point ExecStart at the binary just built, so verify can check it exists and is executable.
  sed -E "s|/usr/local/bin/([a-z-]+)|$(realpath "$bin_dir")/\1|g" "$unit" > "$work/$name"
  out=$(systemd-analyze verify "$work/$name" 2>&1 || true)
  if [ -n "$out" ]; then
    echo "FAIL $unit: $out"; fail=1; continue
  fi
  exposure=$(systemd-analyze security --offline=true "$work/$name" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if ! awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 3.0) }'; then
    echo "FAIL $unit: exposure level '$exposure' is above 3.0 (harden the unit)"; fail=1; continue
  fi
  echo "ok   $unit (exposure $exposure)"
done

for data in infra/cloud-init/*.yaml; do
  [ -e "$data" ] || continue
  if out=$(cloud-init schema --config-file "$data" 2>&1); then
    echo "ok   $data"
  else
    echo "FAIL $data: $out"; fail=1
  fi
done

# Configuration files embedded in the user-data must pass the programs' own checks.
while IFS=$'\t' read -r data path file; do
  case "$path" in
    */edgemeet.toml) check=("$bin_dir/edgemeet" config check "$file") ;;
    */media-node.toml) check=("$bin_dir/edgemeet-media-node" --check "$file") ;;
    */uploader.toml) check=("$bin_dir/edgemeet-uploader" check-config --config "$file") ;;
    *) continue ;;
  esac
  if out=$(EDGEMEET_NODE_SECRET=0123456789abcdef0123456789abcdef "${check[@]}" 2>&1); then
    echo "ok   $data: $path"
  else
    echo "FAIL $data: $path: $out"; fail=1
  fi
done < <(/usr/bin/python3 - "$work" infra/cloud-init/*.yaml <<'PY'
import os, sys, yaml
work = sys.argv[1]
for i, data in enumerate(sys.argv[2:]):
    for j, entry in enumerate(yaml.safe_load(open(data)).get("write_files", [])):
        out = os.path.join(work, f"{i}-{j}-{os.path.basename(entry['path'])}")
        open(out, "w").write(entry.get("content", ""))
        print(f"{data}\t{entry['path']}\t{out}")
PY
)

passed=$(grep -c . <<<"$(ls infra/systemd/*.service infra/cloud-init/*.yaml 2>/dev/null)" || true)
if [ "$fail" -ne 0 ]; then echo "infra checks failed"; exit 1; fi
echo "infra: $passed files checked"
