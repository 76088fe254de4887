#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# compose/ha/compose.yaml without Docker (none where the suite runs): its
# services are the documented topology (three etcd members forming one
# cluster with --max-txn-ops raised, one mosquitto, two partregd agents
# with their own client ids and read indexes, --etcd naming every member),
# and every flag given to partregd is one this partregd accepts (it starts
# with them and fails only for want of the etcd hosts: exit 1, where a bad
# flag is 2), and every flag given to
# etcd one this etcd accepts (etcd --help lists it). The topology itself
# runs in test_ha_etcd.sh.
. "$(dirname "$0")/lib.sh"
command -v etcd >/dev/null || { echo "SKIP: no etcd"; FAILED=0; exit 77; }
python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: no python3-yaml"; FAILED=0; exit 77; }
C=$PARTREG_SOURCE_DIR/compose/ha/compose.yaml
python3 - "$C" >"$T/services" <<'PY' || { cat "$T/services"; fail "compose/ha/compose.yaml: not the topology"; }
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
svc = doc["services"]
etcd = {n: s for n, s in svc.items() if n.startswith("etcd")}
agents = {n: s for n, s in svc.items() if n.startswith("partregd")}
assert len(etcd) == 3, f"{len(etcd)} etcd members"
assert len(agents) == 2, f"{len(agents)} agents"
assert "mosquitto" in svc
names = set(etcd)
for n, s in etcd.items():
    cmd = s["command"]
    assert cmd[0] == "etcd", cmd
    flags = dict(a[2:].split("=", 1) for a in cmd[1:])
    assert flags["name"] == n
    members = dict(m.split("=", 1) for m in flags["initial-cluster"].split(","))
    assert set(members) == names, members
    assert int(flags["max-txn-ops"]) >= 1000
    print("etcd", " ".join(cmd[1:]))
ids, dirs = set(), set()
for n, s in agents.items():
    flags = dict(a[2:].split("=", 1) for a in s["command"])
    ends = flags["etcd"].split(",")
    assert {e.split("//")[1].split(":")[0] for e in ends} == names, ends
    assert int(flags["etcd-max-txn-ops"]) >= 1000
    ids.add(flags["client-id"]); dirs.add(s["volumes"][0].split(":")[0])
    print("partregd", " ".join(s["command"]))
assert len(ids) == 2, "the agents share a client id"
assert len(dirs) == 2, "the agents share a read index volume"
PY
ok "compose/ha/compose.yaml: 3 etcd members in one cluster, mosquitto, 2 agents with their own ids and volumes"
EH=$(etcd --help 2>&1)
while read -r kind args; do
  read -ra a <<<"$args"
  if [ "$kind" = partregd ]; then
    # Parsed and checked, then it cannot reach etcd1 (no such host here):
    # 1 (cannot start) after its options were taken; a bad one is 2.
    rc=0
    timeout 20 "$PARTREGD" "${a[@]}" --data-dir "$T/data" >/dev/null 2>"$T/err" || rc=$?
    [ $rc -eq 1 ] && grep -q "cannot use etcd at http://etcd1:2379" "$T/err" ||
      fail "partregd with the compose flags exited $rc: $(tail -n 3 "$T/err")"
  else
    for f in "${a[@]}"; do
      grep -qF -- "${f%%=*}" <<<"$EH" || fail "etcd has no ${f%%=*}"
    done
  fi
done <"$T/services"
ok "every flag of the compose file is accepted by partregd and etcd"
# compose/ha/etcd.default (Debian's etcd.service): every ETCD_<NAME> is a
# flag --<name> of this etcd, and --max-txn-ops is raised.
D=$PARTREG_SOURCE_DIR/compose/ha/etcd.default
n=0
while IFS='=' read -r k _; do
  f=--$(tr 'A-Z_' 'a-z-' <<<"${k#ETCD_}")
  grep -qE -- "^ +$f( |$)" <<<"$EH" || fail "etcd.default: $k is no etcd flag ($f)"
  n=$((n + 1))
done < <(grep -E '^ETCD_' "$D")
grep -qE '^ETCD_MAX_TXN_OPS=[0-9]{4,}' "$D" || fail "etcd.default does not raise max-txn-ops"
ok "compose/ha/etcd.default: its $n settings are etcd flags"
pass
