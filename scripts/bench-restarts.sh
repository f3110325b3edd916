#!/usr/bin/env bash
# Restarts timed under a backlog: run by scripts/bench-backlog.sh (through
# `raftq bench --before-drain`) once the backlog is published, against the
# dev cluster it started. Three measurements, each printed as one line:
#
#  1. follower restart: kill -9 a follower, start it again, time until it
#     has applied what the leader had applied at the kill;
#  2. catch-up from a snapshot: remove a follower, wipe its data dir, add
#     it back as a learner; time until it has applied the leader's index,
#     the state's size over that time (MB/s), and the most any node's RSS
#     grew meanwhile; then promote it back;
#  3. whole cluster: kill -9 all three, start them again, time until the
#     first confirmed publish.
#
# Needs: RAFTQ_SERVER_BIN, RAFTQ_SERVERS, BENCH_PIDFILE (a file listing the
# node pids, rewritten as nodes restart), BENCH_LOGDIR.
set -euo pipefail
bin="$RAFTQ_SERVER_BIN"
export RAFTQ_SERVERS
pidfile="$BENCH_PIDFILE"
logdir="$BENCH_LOGDIR"

now() { date +%s.%N; }
# Every wait below gives up (failing the bench) after this many seconds.
wait_secs="${RAFTQ_BENCH_WAIT_SECS:-900}"
deadline=0
arm() { deadline=$(( $(date +%s) + wait_secs )); }
check_deadline() { # what
    (( $(date +%s) < deadline )) || { echo "bench-restarts: gave up after ${wait_secs} s waiting for $1" >&2; exit 1; }
}
since() { echo "$(now) - $1" | bc; }
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Node id -> pid and command line, from the processes themselves.
declare -A pid_of cmd_of
load_nodes() {
    pid_of=(); cmd_of=()
    for pid in $(cat "$pidfile"); do
        local cmd id
        cmd=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed 's/^/\x27/; s/$/\x27/' | tr '\n' ' ')
        id=$(tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.*--node-id \([0-9]*\).*/\1/p')
        pid_of[$id]=$pid
        cmd_of[$id]=$cmd
    done
}
save_pids() { printf '%s\n' "${pid_of[@]}" >"$pidfile"; }
start_node() { # id
    # exec: the background job becomes the node itself, so $! is its pid
    # (a wrapper's pid would be killed while the node lived on).
    eval "exec ${cmd_of[$1]}" >>"$logdir/node-$1.log" 2>&1 &
    pid_of[$1]=$!
    save_pids
}
kill_node() { # id
    kill -9 "${pid_of[$1]}"
    while kill -0 "${pid_of[$1]}" 2>/dev/null; do sleep 0.05; done
}
addr_of() { tr '\0' ' ' <"/proc/${pid_of[$1]}/cmdline" | sed -n 's/.*--listen \([^ ]*\).*/\1/p'; }
peer_addr_of() { tr '\0' ' ' <"/proc/${pid_of[$1]}/cmdline" | sed -n 's/.*--peer-listen \([^ ]*\).*/\1/p'; }
dir_of() { tr '\0' ' ' <"/proc/${pid_of[$1]}/cmdline" | sed -n 's/.*--data-dir \([^ ]*\).*/\1/p'; }
# `--node`: that node's own view (`--servers` alone is answered by the leader).
status_json() { "$bin" --servers "$1" --json cluster status --node "$1" 2>/dev/null; }
leader() { "$bin" --servers "$RAFTQ_SERVERS" --json cluster status 2>/dev/null | json_field 'd["leader"]'; }
own_field() { # addr field -> that field of the node's own status row (empty if it does not answer)
    status_json "$1" | json_field "[n[\"$2\"] for n in d[\"nodes\"] if n[\"node_id\"] == d[\"answered_by\"]][0]" 2>/dev/null || true
}
applied_of() { own_field "$1" last_applied; }
# The leader's applied index, asked until it answers.
leader_applied() {
    local got=""
    arm
    until [[ -n "$got" && "$got" != None ]]; do
        check_deadline "the leader's applied index"
        got=$(applied_of "$(addr_of "$lead")")
    done
    echo "$got"
}
wait_applied() { # addr index
    arm
    while true; do
        check_deadline "$1 to apply $2"
        local got
        got=$(applied_of "$1")
        [[ -n "$got" && "$got" != None && "$got" -ge "$2" ]] && return
        sleep 0.1
    done
}

load_nodes
lead=$(leader)
follower=$(for id in "${!pid_of[@]}"; do [[ $id != "$lead" ]] && echo "$id"; done | head -1)
addr=$(addr_of "$follower")
dir=$(dir_of "$follower")
echo "leader $lead, follower $follower at $addr, data dir $dir"

# 1. Follower restart.
target=$(leader_applied)
kill_node "$follower"
t0=$(now)
start_node "$follower"
wait_applied "$addr" "$target"
echo "follower restart: node $follower ready and caught up to applied index $target in $(since "$t0") s, RSS $(rss_mib "${pid_of[$follower]}") MiB"

# 2. Catch-up from a snapshot into a wiped data dir.
"$bin" cluster remove "$follower" >/dev/null
kill_node "$follower"
state_mib=$(du -sm "$(dir_of "$lead")" | cut -f1)
rm -rf "$dir"
# A node that joins lists the other voters, not itself.
# (Addresses hold '/', so `sed` splits on '|'.)
cmd_of[$follower]=$(echo "${cmd_of[$follower]}" | sed "s|'--peers' '[^']*'|'--peers' '$(
    for id in "${!pid_of[@]}"; do [[ $id != "$follower" ]] && echo -n "$id=$(addr_of "$id")/$(peer_addr_of "$id"),"; done | sed 's/,$//')'|")
declare -A rss_before
for id in "${!pid_of[@]}"; do [[ $id != "$follower" ]] && rss_before[$id]=$(rss_mib "${pid_of[$id]}"); done
start_node "$follower"
arm
until "$bin" --servers "$addr" cluster status --node "$addr" >/dev/null 2>&1; do check_deadline "node $follower to answer"; sleep 0.05; done
target=$(leader_applied)
t0=$(now)
# The add waits for the learner to catch up and may time out first: the
# loop below is what times the catch-up.
"$bin" cluster add "$follower" "$addr" "$(peer_addr_of "$follower")" >/dev/null 2>&1 || true
peak_growth=0
arm
while true; do
    check_deadline "node $follower to catch up"
    for id in "${!rss_before[@]}"; do
        growth=$(( $(rss_mib "${pid_of[$id]}") - rss_before[$id] ))
        (( growth > peak_growth )) && peak_growth=$growth
    done
    got=$(applied_of "$addr")
    [[ -n "$got" && "$got" != None && "$got" -ge "$target" ]] && break
    sleep 0.1
done
secs=$(since "$t0")
echo "snapshot catch-up: node $follower now holds a snapshot at index $(own_field "$addr" snapshot_index) (0: caught up from the log alone)"
echo "snapshot catch-up: node $follower installed ${state_mib} MiB of state (the leader's data dir) and caught up in $secs s ($(echo "$state_mib * 1.048576 / $secs" | bc) MB/s); largest RSS growth of the other nodes meanwhile ${peak_growth} MiB; its own RSS $(rss_mib "${pid_of[$follower]}") MiB"
# The follower's own account of the install: pairs, bytes of the stream,
# seconds from its first chunk to the switch, MB/s.
echo "snapshot install (node $follower's log): $(grep 'installed a snapshot' "$logdir/node-$follower.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g')"
"$bin" cluster promote "$follower" >/dev/null

# 3. Whole cluster.
"$bin" queue create backlog-probe >/dev/null
for id in "${!pid_of[@]}"; do kill -9 "${pid_of[$id]}"; done
for id in "${!pid_of[@]}"; do while kill -0 "${pid_of[$id]}" 2>/dev/null; do sleep 0.05; done; done
t0=$(now)
for id in "${!pid_of[@]}"; do start_node "$id"; done
arm
until "$bin" publish backlog-probe "after the restart" >/dev/null 2>&1; do check_deadline "a confirmed publish"; sleep 0.05; done
echo "whole-cluster restart: first confirmed publish $(since "$t0") s after starting all three (kill -9)"
