#!/usr/bin/env bash
# Run every end-to-end scenario: e2e/demo.sh, then each e2e/test-*.sh in name
# order. Each runs in its own bash process with no stdin; its output is
# streamed as it goes. A failing scenario does not stop the others.
#
# Ends with a plain line "N passed, N failed" (what CI reads) and exits
# non-zero when any scenario failed, or when there was nothing to run.
#
#   WARRANT=path/to/warrant   passed through to every scenario
#                             (default there: ${CARGO_TARGET_DIR:-target}/release/warrant;
#                             a relative CARGO_TARGET_DIR is taken from the repo root)
#   E2E_FILTER=REGEX          run only the scenarios whose file name matches
set -uo pipefail   # no -e: we collect failures instead of stopping

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo" || exit 2   # scenarios resolve ${CARGO_TARGET_DIR:-target}/release/warrant from here

scenarios=("$here/demo.sh")
shopt -s nullglob
for f in "$here"/test-*.sh; do scenarios+=("$f"); done
shopt -u nullglob

passed=0 failed=0
failed_names=()
for script in "${scenarios[@]}"; do
  name=$(basename "$script")
  if [[ -n ${E2E_FILTER:-} && ! $name =~ $E2E_FILTER ]]; then continue; fi
  printf '\n======== %s ========\n' "$name"
  start=$SECONDS
  if bash "$script" </dev/null; then
    rc=0
  else
    rc=$?
  fi
  elapsed=$((SECONDS - start))
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
    printf -- '-------- PASS %s (%ss)\n' "$name" "$elapsed"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    printf -- '-------- FAIL %s (exit %s, %ss)\n' "$name" "$rc" "$elapsed"
  fi
done

echo
if ((failed > 0)); then
  echo "failed scenarios: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"

if ((failed > 0)); then exit 1; fi
if ((passed == 0)); then echo "run-all: no scenario ran" >&2; exit 1; fi
exit 0
