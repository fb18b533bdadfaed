#!/usr/bin/env bash
# Extracts the example EUnit modules from the reference description
# (../shared/spec/hb_beamr-reference.md, when present) into
# test/reference_examples/ (git-ignored), so that `rebar3 eunit` runs them
# unmodified beside the project's own suites. Prints how many it extracted.
set -euo pipefail
cd "$(dirname "$0")/.."
spec="${HB_BEAMR_REFERENCE:-../shared/spec/hb_beamr-reference.md}"
out=test/reference_examples
rm -rf "$out"
if [ ! -f "$spec" ]; then
    echo "reference-tests: no $spec; skipping the reference's examples"
    exit 0
fi
mkdir -p "$out"
python3 - "$spec" "$out" <<'PY'
import re, sys
spec, out = sys.argv[1], sys.argv[2]
text = open(spec, encoding="utf-8").read()
# Each example is a module from "-module(" up to the next numbered section.
found = re.findall(r"(-module\((\w+)\)\..*?)(?=\n\d+\. |\nImport Function Specification|\Z)", text, re.S)
for body, name in found:
    with open(f"{out}/{name}.erl", "w", encoding="utf-8") as f:
        f.write(body.strip() + "\n")
print(f"reference-tests: extracted {len(found)} example modules into {out}")
PY
