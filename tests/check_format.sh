#!/usr/bin/env bash
# Every C file is as clang-format (the repository's .clang-format) writes it.
# Skipped (77) where clang-format is not installed.
top=${1:?usage: check_format.sh SOURCE_DIR}
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
cd "$top" || exit 1
bad=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests -name '*.[ch]'); do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f (clang-format -i $f)"; bad=1; }
done
[ $bad -eq 0 ] && echo "all C files formatted"
exit $bad
