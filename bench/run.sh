#!/usr/bin/env bash
# Runs benchmarks (what `make bench` calls). Each bench/NAME.py prints its figures beside its targets and
# exits non-zero on a miss; this runs every selected one, even after a miss, and fails if any failed.
#   bench/run.sh              the default set: every bench/*.py except _*.py and the slow ones below
#   bench/run.sh all          every benchmark, slow ones included
#   bench/run.sh serving scale     just these (names without .py; slow ones may be named too)
# Extra arguments for the scripts go in BENCH_ARGS (e.g. BENCH_ARGS="--server-url postgresql://...").
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Minutes each, or a model download: run them by name or with `all`.
SLOW="generation llmbar_rm trainer_vs_trl"

available=$(for f in bench/*.py; do n=$(basename "$f" .py); [[ $n == _* ]] || echo "$n"; done)
case "${1:-default}" in
  default) selected=$(for n in $available; do [[ " $SLOW " == *" $n "* ]] || echo "$n"; done) ;;
  all) selected=$available ;;
  *) selected="$*" ;;
esac

failed=()
for name in $selected; do
  if [[ ! -f bench/$name.py ]]; then
    echo "== no benchmark bench/$name.py (available: $(echo $available))"
    failed+=("$name")
    continue
  fi
  echo "== bench/$name.py $(date -u +%FT%TZ)"
  # shellcheck disable=SC2086
  "$PYTHON" "bench/$name.py" ${BENCH_ARGS:-} || failed+=("$name")
done
if ((${#failed[@]})); then
  echo "== benchmarks that missed a target or failed: ${failed[*]}"
  exit 1
fi
echo "== every benchmark met its targets: $(echo $selected)"
