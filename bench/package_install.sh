#!/usr/bin/env bash
# Each package builds with the oldest setuptools it declares (77) and installs alone into an empty venv, as the
# package READMEs say: fmb-core first (dependencies resolved from PyPI), then each plugin on top of it.
# Plugins: their heavy dependencies (torch, astropt, polymathic-aion) are resolved once with --dry-run (metadata
# only, constraints.txt applied) and the wheel is installed --no-deps, unless FULL=1.
# usage: bench/package_install.sh [WORKDIR]     (network to PyPI needed; a few minutes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work/dist"
py=${PYTHON:-python3}
pkgs=(fmb-core fmb-astropt fmb-astroclip fmb-aion tests/plugins/fmb-example)

"$py" -m venv "$work/buildenv"
"$work/buildenv/bin/pip" install -q --disable-pip-version-check "setuptools==77.0.3" build wheel
for p in "${pkgs[@]}"; do
  # --no-isolation: build with THIS setuptools (the oldest declared), not the newest pip would fetch
  "$work/buildenv/bin/python" -m build -q --no-isolation --sdist --wheel --outdir "$work/dist" "$root/$p" \
    >"$work/build-$(basename "$p").log" 2>&1 || { echo "BUILD FAILED: $p"; tail -20 "$work/build-$(basename "$p").log"; exit 1; }
  echo "built $p"
done
ls "$work/dist"
for f in "$work"/dist/*.whl; do
  "$work/buildenv/bin/python" - "$f" <<'PY'
import sys, zipfile, email
z = zipfile.ZipFile(sys.argv[1]); meta = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")][0]
m = email.message_from_bytes(z.read(meta))
lic = [n for n in z.namelist() if "licenses/LICENSE" in n]
assert m["License-Expression"], f"{sys.argv[1]}: no License-Expression"
assert lic, f"{sys.argv[1]}: no LICENSE file in the wheel"
assert m.get_all("Classifier") and m.get_all("Project-URL"), f"{sys.argv[1]}: no classifiers / project URLs"
assert len(m.get_payload()) > 500, f"{sys.argv[1]}: README too short for a PyPI page"
pins = [r for r in (m.get_all("Requires-Dist") or []) if "==" in r.split(";")[0]]
assert not pins, f"{sys.argv[1]}: exact pins in library metadata: {pins}"
print(f"metadata ok: {m['Name']} {m['Version']} ({m['License-Expression']})")
PY
done

"$py" -m venv "$work/env"
pip="$work/env/bin/pip"
"$pip" install -q --disable-pip-version-check "$work"/dist/fmb_core-*.whl
"$work/env/bin/fmb" --help >/dev/null && "$work/env/bin/fmb" models | grep -q baseline && echo "fmb-core installs alone: ok"
"$work/env/bin/fmb" models | grep -q example && { echo "fmb-example leaked into the user install"; exit 1; }
for p in fmb_astropt fmb_astroclip fmb_aion; do
  whl=$(ls "$work"/dist/${p}-*.whl)
  if [ "${FULL:-0}" = 1 ]; then
    "$pip" install -q -c "$root/constraints.txt" "$whl"
  else
    "$pip" install -q --dry-run -c "$root/constraints.txt" "$whl" \
      >"$work/resolve-$p.log" 2>&1 && echo "$p: dependencies resolve" || { echo "$p: RESOLUTION FAILED"; tail -5 "$work/resolve-$p.log"; exit 1; }
    "$pip" install -q --no-deps "$whl"
  fi
done
"$work/env/bin/fmb" plugins >/dev/null && echo "plugins load: ok"
"$work/env/bin/fmb" models | tee "$work/models.txt" | grep -E "^\S|astro|aion" | head -20
echo "ALL OK ($work)"
