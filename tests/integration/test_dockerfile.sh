#!/usr/bin/env bash
# compose/Dockerfile without Docker (there is no Docker engine where the
# suite runs, and no registry): the build stage's COPY lines are carried out
# into a scratch /src — every source must exist in the repository and not be
# excluded by compose/Dockerfile.dockerignore — and its RUN lines run there,
# the same commands, except the apt-get line, whose packages must be
# installed here. The runtime stage's COPY --from must then find the .deb,
# and the package must hold the ENTRYPOINT. (The Dockerfile once copied a
# directory, cmake/, that no longer existed, and nothing noticed.)
# With PARTREG_TEST_DOCKER=1 and a Docker engine, `docker build --target
# build` runs too (it needs the network for debian:12-slim and apt).
for tool in cmake ninja cpack dpkg-deb dpkg-query; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
DF=$PARTREG_SOURCE_DIR/compose/Dockerfile
IGNORE=$PARTREG_SOURCE_DIR/compose/Dockerfile.dockerignore

# The Dockerfile as instructions, one a line: continuation lines joined,
# comments and blank lines dropped; each prefixed with its stage's name.
awk '
  /^[[:space:]]*#/ || /^[[:space:]]*$/ { next }
  { line = line $0 }
  /\\$/ { sub(/\\$/, "", line); next }
  {
    if (line ~ /^FROM /) { n++; stage = (line ~ / AS [a-z]+$/) ? $NF : "stage" n }
    print stage "\t" line; line = ""
  }
' "$DF" >"$T/instructions"
grep -q $'^build\tFROM ' "$T/instructions" || fail "the Dockerfile has no stage named build"

# ignored PATH: compose/Dockerfile.dockerignore excludes PATH (its patterns
# are globs against the path from the context's root, or a parent of it).
ignored() {
  [ -f "$IGNORE" ] || return 1
  local pat p=$1
  while read -r pat; do
    case $pat in '' | '#'* | '!'*) continue ;; esac
    pat=${pat%/}
    while :; do
      # shellcheck disable=SC2254
      case $p in $pat) return 0 ;; esac
      [ "${p%/*}" != "$p" ] || break
      p=${p%/*}
    done
    p=$1
  done <"$IGNORE"
  return 1
}

# The build stage's WORKDIR is $SRC.
SRC=$T/src
wd=/
mkdir -p "$SRC"
cd "$SRC"
while IFS=$'\t' read -r stage ins; do
  [ "$stage" = build ] || continue
  read -r op args <<<"$ins"
  case $op in
  COPY | ADD)
    [ "$op" = COPY ] || fail "ADD in the build stage: use COPY"
    read -ra a <<<"$args"
    dest=${a[-1]}
    for src in "${a[@]:0:${#a[@]}-1}"; do
      [ -e "$PARTREG_SOURCE_DIR/$src" ] || fail "COPY $src: no such file or directory in the repository"
      ignored "$src" && fail "COPY $src: excluded by $IGNORE"
      # Docker copies a directory's contents, and a file into a directory
      # when the destination ends with /.
      if [ -d "$PARTREG_SOURCE_DIR/$src" ]; then
        mkdir -p "$dest" && cp -a "$PARTREG_SOURCE_DIR/$src/." "$dest/"
      elif [ "${dest%/}" != "$dest" ]; then
        mkdir -p "$dest" && cp -a "$PARTREG_SOURCE_DIR/$src" "$dest"
      else
        cp -a "$PARTREG_SOURCE_DIR/$src" "$dest"
      fi
    done
    ok "COPY $args"
    ;;
  RUN)
    if [[ $args == *apt-get* ]]; then
      pkgs=$(sed -E 's/.*install -y --no-install-recommends//; s/&&.*//' <<<"$args")
      for p in $pkgs; do
        # (triggers-pending: installed, while another dpkg run processes triggers)
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
          grep -qE '^install ok (installed|triggers-pending|triggers-awaited)$' ||
          fail "the build stage installs $p, which is not installed here"
      done
      ok "the build stage's packages are installed here: $(echo $pkgs)"
      continue
    fi
    # The same commands; two jobs at most (the suite shares the machine).
    CMAKE_BUILD_PARALLEL_LEVEL=2 bash -ec "$args" >>"$T/build-stage.log" 2>&1 ||
      fail "the build stage's RUN failed (see $T/build-stage.log): $args"
    ok "RUN $args"
    ;;
  WORKDIR) wd=$args ;;
  FROM | ENV | ARG) ;;
  *) fail "an instruction this test does not know in the build stage: $ins" ;;
  esac
done <"$T/instructions"

# The runtime stage takes the package from the build stage's /src.
from=$(grep -E $'^[^\t]+\tCOPY --from=build ' "$T/instructions" | head -n 1 | awk '{print $4}')
[ -n "$from" ] || fail "the runtime stage copies nothing from the build stage"
[ "${from#"$wd"/}" != "$from" ] || fail "COPY --from=build $from: not under the build stage's WORKDIR $wd"
# shellcheck disable=SC2086 # a glob, as Docker takes it
debs=$(cd "$SRC" && ls -d ${from#"$wd"/} 2>/dev/null || true)
debs=${debs:+$SRC/$debs}
[ "$(wc -w <<<"$debs")" -eq 1 ] || fail "COPY --from=build $from matches: '$debs' (want one .deb)"
entry=$(sed -n 's/^ENTRYPOINT \["\([^"]*\)".*/\1/p' "$DF")
contents=$(dpkg-deb -c "$debs")
grep -q " \.$entry\$" <<<"$contents" || fail "the package has no $entry (the ENTRYPOINT)"
ok "the build stage made $(basename "$debs"), with the ENTRYPOINT $entry"

if [ "${PARTREG_TEST_DOCKER:-0}" = 1 ]; then
  docker info >/dev/null 2>&1 || fail "PARTREG_TEST_DOCKER=1 but no Docker engine answers"
  (cd "$PARTREG_SOURCE_DIR" && docker build -f compose/Dockerfile --target build -t partreg-test-build .) \
    >"$T/docker.log" 2>&1 || fail "docker build --target build failed (see $T/docker.log)"
  ok "docker build --target build"
else
  echo "(docker build not run: set PARTREG_TEST_DOCKER=1 where a Docker engine and the network are)"
fi
FAILED=0
echo PASS
