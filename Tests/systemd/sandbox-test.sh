#!/usr/bin/env bash
# sandbox-test.sh: prove systemd/smetsd.socket and systemd/smetsd.service under a real systemd.
#
#   Tests/systemd/sandbox-test.sh [SMETSD SMETSCTL]
#
# Boots a throwaway systemd with shared/tools/systemd-sandbox (needs root), loads only the two units
# (plus a drop-in pointing ExecStart= at the binaries under test), and checks the daemon's systemd
# contract end to end: socket activation on first connect, Type=notify readiness and STATUS=, watchdog
# pings, SIGHUP reload, structured journald fields, a clean SIGTERM stop (Result=success, status 0)
# and re-activation by the socket after the stop.
#
# Without arguments the binaries come from `swift build --show-bin-path` (build them first, e.g.
# `swift build --product smetsd && swift build --product smetsctl`; SWIFT_SCRATCH_PATH selects a
# --scratch-path). Env: SYSTEMD_SANDBOX overrides the sandbox tool's path; SANDBOX_KEEP_LOG=FILE keeps
# systemd's console log; SMETSD_TEST_TIMEOUT (default 60) bounds each wait in seconds.
#
# The sandbox replaces /tmp, /run and /var/* with empty tmpfs mounts, so the repo (under /tmp in CI)
# is invisible inside: binaries, devices/ and units are copied to a fresh folder under /opt first, and
# that folder is removed on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
sandbox=${SYSTEMD_SANDBOX:-$repo/../shared/tools/systemd-sandbox}
timeout_s=${SMETSD_TEST_TIMEOUT:-60}

fail_setup() { echo "FAIL: setup: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

[[ -x $sandbox ]] || fail_setup "systemd-sandbox not found at $sandbox"
[[ $(id -u) == 0 ]] || fail_setup "must run as root (systemd-sandbox boots systemd in namespaces)"

if [[ $# -ge 2 ]]; then
  smetsd_bin=$1
  smetsctl_bin=$2
elif [[ $# -eq 0 ]]; then
  scratch=()
  [[ -n ${SWIFT_SCRATCH_PATH:-} ]] && scratch=(--scratch-path "$SWIFT_SCRATCH_PATH")
  bin_dir=$(cd "$repo" && swift build "${scratch[@]}" --show-bin-path)
  smetsd_bin=$bin_dir/smetsd
  smetsctl_bin=$bin_dir/smetsctl
else
  fail_setup "usage: $0 [SMETSD SMETSCTL]"
fi
[[ -x $smetsd_bin ]] || fail_setup "no smetsd binary at $smetsd_bin (build it first)"
[[ -x $smetsctl_bin ]] || fail_setup "no smetsctl binary at $smetsctl_bin (build it first)"

# A folder the sandbox can see and the service's dynamic user can read (0755, under /opt).
stage=$(mktemp -d /opt/smetsd-sandbox-test.XXXXXX)
units=$(mktemp -d "${TMPDIR:-/tmp}/smetsd-units.XXXXXX")
cleanup() { rm -rf "$stage" "$units"; }
trap cleanup EXIT
chmod 0755 "$stage"
mkdir -p "$stage/bin"
cp "$smetsd_bin" "$smetsctl_bin" "$stage/bin/"
cp -r "$repo/devices" "$stage/devices"
chmod -R a+rX "$stage"

# The socket unit gives its files to group smetsd-lab (systemd/smetsd.sysusers.conf); the sandbox shares the
# host's /etc, so the group must exist there, as systemd-sysusers would create it on install.
getent group smetsd-lab >/dev/null || groupadd --system smetsd-lab || fail_setup "cannot create group smetsd-lab"
cp "$repo/systemd/smetsd.socket" "$repo/systemd/smetsd.service" "$units/"
mkdir -p "$units/smetsd.service.d"
cat >"$units/smetsd.service.d/test.conf" <<EOF
# Added by Tests/systemd/sandbox-test.sh: run the binaries under test.
[Service]
ExecStart=
ExecStart=$stage/bin/smetsd --lab $stage/devices --runtime /run/smetsd
# A short watchdog, so that a daemon that does not ping is killed (Result=watchdog) within the test.
WatchdogSec=4s
EOF

# Everything below runs inside the sandbox, as root, talking to the sandbox's systemd.
inner=$(cat <<'INNER'
set -uo pipefail
stage=$1
timeout_s=$2
ctl=$stage/bin/smetsctl
sock=/run/smetsd/control.sock
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
prop() { systemctl show smetsd.service -p "$1" --value; }
# wait_for SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds or time runs out
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    (( SECONDS >= deadline )) && return 1
    sleep 0.2
  done
}
is_state() { [[ $(systemctl is-active "$1" 2>/dev/null) == "$2" ]]; }
# (grep without -q reads to the end: an early exit would SIGPIPE journalctl and fail the pipeline)
journal_has() { journalctl -u smetsd.service -o verbose --no-pager 2>/dev/null | grep -E "$1" >/dev/null; }
status_json() { timeout "$timeout_s" "$ctl" --socket "$sock" status --json; }
looks_ready() { # the daemon.status result says it is up: ready=true or state ready/running/serving
  grep -Eq '"ready"[[:space:]]*:[[:space:]]*true|"state"[[:space:]]*:[[:space:]]*"(ready|running|serving)"' <<<"$1"
}
has_keys() { # has_keys JSON KEY...: every KEY appears as an object key
  local json=$1 key; shift
  for key in "$@"; do grep -q "\"$key\"[[:space:]]*:" <<<"$json" || return 1; done
}
same_process() { # still active, same main PID, never restarted
  is_state smetsd.service active && [[ $(prop MainPID) == "$1" && $(prop NRestarts) == 0 ]]
}
has_socket() { local f; for f in "$1"/* "$1"/*/*; do [[ -S $f ]] && return 0; done; return 1; }
reachable_by_others() { # not moved to /run/private (0700) nor chowned to the transient user
  [[ ! -L /run/smetsd && $(stat -c %U /run/smetsd) == root && $(stat -c %U /run/smetsd/control.sock) == root ]] &&
    setpriv --reuid=65534 --regid=65534 --clear-groups test -S /run/smetsd/control.sock
}
diagnose() {
  echo "----- systemctl status -----"
  systemctl status smetsd.socket smetsd.service --no-pager -l 2>&1 | sed 's/^/  /'
  echo "----- journal (last 60) -----"
  journalctl -u smetsd.service -u smetsd.socket -n 60 --no-pager 2>&1 | sed 's/^/  /'
}

# 1. The socket unit listens; the service waits for its first client.
check "smetsd.socket starts" systemctl start smetsd.socket
check "control.sock, han.sock and duis.sock exist" test -S /run/smetsd/control.sock -a -S /run/smetsd/han.sock -a -S /run/smetsd/duis.sock
check "smetsd.service is not started before the first connection" is_state smetsd.service inactive
check "socket files are root:smetsd-lab 0660" test "$(stat -c '%U:%G %a' /run/smetsd/control.sock)" = "root:smetsd-lab 660"

# 2. First connection activates the service. It may be answered while the daemon is still starting
#    (state "starting"); once systemd has READY=1 the daemon must say it is ready.
out=$(status_json 2>&1); rc=$?
check "smetsctl status (activating the service) exits 0" test "$rc" -eq 0
echo "  first status: $(tr -d '\n' <<<"$out" | cut -c1-200)"
check "smetsd.service is active (READY=1 received)" wait_for "$timeout_s" is_state smetsd.service active
out=$(status_json 2>&1); rc=$?
echo "  status: $(tr -d '\n' <<<"$out" | cut -c1-200)"
check "daemon.status says ready once active" looks_ready "$out"
check "daemon.status has state, devices, connections, pid" has_keys "$out" state devices connections pid
main_pid=$(prop MainPID)
check "daemon.status pid is the unit's MainPID ($main_pid)" grep -Eq "\"pid\"[[:space:]]*:[[:space:]]*$main_pid([^0-9]|\$)" <<<"$out"
check "STATUS= text is set ($(prop StatusText))" test -n "$(prop StatusText)"
check "bulk threads may lower their priority under the filter (daemon.ready bulk_nice=5, the default)" wait_for 10 journal_has '^[[:space:]]+BULK_NICE=5$'
check "the daemon runs with LimitNOFILE=16384 (room for maxHANConnections)" test "$(cat /proc/"$main_pid"/limits | awk '/Max open files/ {print $4}')" = 16384
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$main_pid/status" 2>/dev/null)
check "runs as a dynamic, non-root user (uid ${uid:-?})" test -n "$uid" -a "${uid:-0}" != 0
check "per-device sockets are bound under /run/smetsd/devices" has_socket /run/smetsd/devices
check "/run/smetsd stays root's and reachable by other users" reachable_by_others
# The DUIS front answers over the activated duis.sock (405: the service paths take POST only).
duis_status() {
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect("/run/smetsd/duis.sock"); s.sendall(b"GET /api/v1/serviceS HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); print(s.recv(64).split()[1].decode())'
}
check "duis.sock (from systemd) answers HTTP: GET on a service path is 405" test "$(duis_status 2>&1)" = 405

# 3. Watchdog: WatchdogSec=4s in the test drop-in; a daemon that does not ping is killed after 4 s.
sleep 6
check "survives 6 s under WatchdogSec=4s (pings WATCHDOG=1)" same_process "$main_pid"

# 4. Structured journal entries.
check "journal has entries with an EVENT= field" wait_for 10 journal_has '^[[:space:]]+EVENT='
check "journal entries carry SYSLOG_IDENTIFIER=smetsd" journal_has '^[[:space:]]+SYSLOG_IDENTIFIER=smetsd$'
check "journal entries carry CODE_FILE= (sent by sd_journal_sendv, not via stderr)" journal_has '^[[:space:]]+CODE_FILE=' 

# 5. Reload: SIGHUP, RELOADING=1 ... READY=1, event daemon.reloaded, still answering.
check "systemctl reload smetsd exits 0" timeout "$timeout_s" systemctl reload smetsd.service
check "journal has EVENT=daemon.reloaded" wait_for "$timeout_s" journal_has '^[[:space:]]+EVENT=daemon\.reloaded$'
check "active again after the reload" wait_for "$timeout_s" is_state smetsd.service active
check "same main process after the reload" same_process "$main_pid"
out=$(status_json 2>&1); rc=$?
check "smetsctl still answers after the reload" test "$rc" -eq 0
check "and says ready" looks_ready "$out"

# 6. Stop: SIGTERM -> STOPPING=1, drain, exit 0.
check "systemctl stop smetsd.service exits 0" timeout "$timeout_s" systemctl stop smetsd.service
check "Result=success" test "$(prop Result)" = success
check "ExecMainStatus=0 (exited by itself, not killed)" test "$(prop ExecMainStatus)" = 0 -a "$(prop ExecMainCode)" = 1
check "smetsd.socket keeps listening" is_state smetsd.socket active
check "socket files survive the stop" test -S /run/smetsd/control.sock
check "the service's /run/smetsd/devices is removed on stop" test ! -e /run/smetsd/devices

# 7. The socket starts it again on the next connection.
out=$(status_json 2>&1); rc=$?
check "next connection re-activates the service" test "$rc" -eq 0
check "active again" wait_for "$timeout_s" is_state smetsd.service active
out=$(status_json 2>&1)
check "and it says ready" looks_ready "$out"
check "stopping both units" systemctl stop smetsd.service smetsd.socket
check "second run also ended with Result=success" test "$(prop Result)" = success

(( failed > 0 )) && diagnose
echo "$passed passed, $failed failed"
(( failed == 0 ))
INNER
)

echo "sandbox-test: smetsd=$smetsd_bin smetsctl=$smetsctl_bin stage=$stage"
"$sandbox" "$units" -- bash -c "$inner" sandbox-test "$stage" "$timeout_s"
