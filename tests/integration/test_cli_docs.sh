#!/usr/bin/env bash
# The man pages: partreg(1) and partregd(8) render without a warning (groff
# -ww and man --warnings), partreg.1 names every subcommand, option and exit
# status of `partreg --help` (and of each subcommand's --help), and
# partregd.8 every option of `partregd --help` with its PARTREG_ variable
# and its default. Skipped (77) without groff.
. "$(dirname "$0")/lib.sh"
: "${PARTREG_CLI:?set by ctest: path to partreg}"
command -v groff >/dev/null || { echo "SKIP: groff is not installed"; FAILED=0; exit 77; }
M1=$PARTREG_SOURCE_DIR/cli/partreg.1
M8=$PARTREG_SOURCE_DIR/src/partregd.8
[ -f "$M1" ] && [ -f "$M8" ] || fail "man pages missing"

for f in "$M1" "$M8"; do
  w=$(groff -man -ww -z "$f" 2>&1) || fail "groff failed on $f"
  [ -z "$w" ] || { echo "$w" >&2; fail "groff warnings in $(basename "$f")"; }
  ok "groff -man -ww: $(basename "$f") renders without warnings"
  if command -v man >/dev/null; then
    w=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null) || fail "man -l failed on $f"
    [ -z "$w" ] || { echo "$w" >&2; fail "man --warnings in $(basename "$f")"; }
    ok "man --warnings -l: $(basename "$f") renders without warnings"
  fi
  head -n 3 "$f" | grep -q '^\.TH ' || fail "$(basename "$f") has no .TH"
done

# Plain text of a page, on long lines, whitespace collapsed.
render() { groff -man -Tascii -P-cbou -rLL=250n "$1" 2>/dev/null | tr -s ' \t\n' '   '; }
R1=$(render "$M1")
R8=$(render "$M8")
grep -q 'EXIT STATUS' <<<"$R1" || fail "partreg.1 has no EXIT STATUS"
grep -q 'ENVIRONMENT' <<<"$R1" || fail "partreg.1 has no ENVIRONMENT"
for sec in SYNOPSIS COMMANDS OPTIONS EXAMPLES 'SEE ALSO'; do
  grep -q "$sec" <<<"$R1" || fail "partreg.1 has no $sec section"
done
for sec in OPTIONS SIGNALS FILES 'DELIVERY GUARANTEE' 'SEE ALSO'; do
  grep -q "$sec" <<<"$R8" || fail "partregd.8 has no $sec section"
done
ok "sections present"
# The examples the issue asks for.
for ex in 'partreg run ' 'partreg wait ' 'crontab' 'Airflow' 'BashSensor' 'BashOperator' 'json watch'; do
  grep -q -- "$ex" <<<"$R1" || fail "partreg.1 EXAMPLES lack $ex"
done
ok "partreg.1 examples: run, wait, cron, Airflow"

# ---- partreg --help against partreg.1 ----
H=$("$PARTREG_CLI" --help) || fail "partreg --help exited $?"
# "  partreg source register NAME --owner OWNER" -> "source register"
mapfile -t cmds < <(sed -n '/^Commands:/,/^$/p' <<<"$H" | grep '^  partreg ' |
  awk '{ s = ""; for (i = 2; i <= NF; i++) { if ($i !~ /^[a-z][a-z-]*$/) break; s = s (s == "" ? "" : " ") $i } print s }')
[ ${#cmds[@]} -ge 18 ] || fail "partreg --help lists only ${#cmds[@]} commands"
for c in "${cmds[@]}"; do
  grep -qF "partreg $c " <<<"$R1" || fail "partreg.1 has no synopsis for \"partreg $c\""
  grep -qF "$c" <<<"$(sed -n '/^COMMANDS/,/^OPTIONS/p' < <(groff -man -Tascii -P-cbou -rLL=250n "$M1" 2>/dev/null))" ||
    fail "partreg.1 COMMANDS does not describe \"$c\""
done
ok "partreg.1 has every subcommand of partreg --help (${#cmds[@]}): ${cmds[*]}"
# Every option of partreg --help and of each subcommand's --help.
opts=$(grep -oE -- '--[a-z][a-z-]*' <<<"$H")
for c in "${cmds[@]}"; do
  # shellcheck disable=SC2086
  h=$("$PARTREG_CLI" $c --help) || fail "partreg $c --help exited $?"
  opts+=$'\n'$(grep -oE -- '--[a-z][a-z-]*' <<<"$h")
done
n=0
for o in $(sort -u <<<"$opts"); do
  grep -qF -- "$o" <<<"$R1" || fail "partreg.1 does not document $o"
  n=$((n + 1))
done
ok "partreg.1 documents every option of the help texts ($n)"
# Every exit status of partreg --help, under EXIT STATUS.
EX1=$(groff -man -Tascii -P-cbou -rLL=250n "$M1" 2>/dev/null | sed -n '/^EXIT STATUS/,/^EXAMPLES/p')
for code in $(sed -n '/^Exit status:/,$p' <<<"$H" | grep -oE '^  [0-9]+' | tr -d ' '); do
  grep -qE "^ +$code( |$)" <<<"$EX1" || fail "partreg.1 EXIT STATUS lacks $code"
done
ok "partreg.1 EXIT STATUS has every code of partreg --help"
# Every PARTREG_ variable named by the help, and one per global option.
for v in PARTREG_TOKEN PARTREG_TOKEN_FILE $(grep -oE 'PARTREG_[A-Z_]+' <<<"$H" | sort -u); do
  grep -qF "$v" <<<"$R1" || fail "partreg.1 does not name $v"
done
ok "partreg.1 names the environment variables"

# ---- partregd --help against partregd.8 ----
HD=$("$PARTREGD" --help) || fail "partregd --help exited $?"
mapfile -t dopts < <(grep -oE '^  --[a-z][a-z-]*' <<<"$HD" | tr -d ' ' | sort -u)
[ ${#dopts[@]} -ge 20 ] || fail "partregd --help lists only ${#dopts[@]} options"
for o in "${dopts[@]}"; do
  grep -qF -- "$o" <<<"$R8" || fail "partregd.8 does not document $o"
done
ok "partregd.8 documents every option of partregd --help (${#dopts[@]})"
for v in $(grep -oE '\[PARTREG_[A-Z_]+\]' <<<"$HD" | tr -d '[]'); do
  grep -qF "$v" <<<"$R8" || fail "partregd.8 does not name $v"
done
ok "partregd.8 names every PARTREG_ variable of partregd --help"
# Each default of partregd --help appears in that option's paragraph of partregd.8.
defaults=$(sed -n '/^defaults:/,$p' <<<"$HD" | sed 's/^defaults://' | tr '\n' ' ')
python3 - "$M8" "$defaults" <<'PY' || fail "partregd.8 defaults differ from partregd --help"
import re, sys
src = open(sys.argv[1]).read().replace('\\-', '-').replace('\\fR', '').replace('\\fI', '').replace('\\fB', '').replace('\\fP', '')
words = sys.argv[2].split()
bad = 0
for name, value in zip(words[0::2], words[1::2]):
    # the .TP paragraph whose tag names the option
    m = re.search(r'\.TP\n\.BI? ' + re.escape(name) + r'\b(.*?)(?=\n\.TP|\n\.SH)', src, re.S)
    if not m:
        print(f'no paragraph for {name}'); bad = 1; continue
    para = m.group(1)
    # "partregd:<prefix>" is written with the prefix in italics
    want = value.replace('<prefix>', 'prefix')
    if want not in para.replace(' ', '').replace('\n', '') and want not in para:
        print(f'{name}: default {value} not in its paragraph'); bad = 1
    else:
        print(f'ok - default of {name}: {value}')
sys.exit(bad)
PY
grep -q 'SIGTERM' <<<"$R8" && grep -q 'SIGHUP' <<<"$R8" || fail "partregd.8 lacks the signals"
grep -qF 'partreg(1)' <<<"$R8" && grep -qF 'partregd(8)' <<<"$R1" || fail "SEE ALSO does not cross-reference"
ok "signals and cross-references"

# Installed by CMake to share/man/man1 and man8.
if [ -n "${PARTREG_BUILD_DIR:-}" ] && [ -f "$PARTREG_BUILD_DIR/cmake_install.cmake" ]; then
  cmake --install "$PARTREG_BUILD_DIR" --prefix "$T/inst" >"$T/install.log" 2>&1 || fail "cmake --install failed"
  [ -f "$T/inst/share/man/man1/partreg.1" ] || fail "partreg.1 not installed to share/man/man1"
  [ -f "$T/inst/share/man/man8/partregd.8" ] || fail "partregd.8 not installed to share/man/man8"
  ok "cmake --install puts the pages in share/man/man1 and man8"
fi
pass
