#!/usr/bin/env bash
# Sequential or concurrent API writes into the example zone, several binaries
# side by side: each binary's server started on the example config (as
# bench/admin.sh does) with its state_dir under BASE, then ROUNDS rounds of
# `bench/admin_writes.py ADMIN TOKEN WRITES CLIENTS` to each server in turn, the
# order rotated each round (the disk's speed moves from one second to the next).
# Prints per round and binary writes/s, the server's CPU per write (perf stat
# task-clock) and its context switches per write. BASE=/dev/shm takes the disk out.
# Usage: bench/admin_compare.sh BASE ROUNDS WRITES CLIENTS BINARY...
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1 rounds=$2 writes=$3 clients=$4; shift 4
bins=("$@")
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d -p "$base")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
admins=()
for i in "${!bins[@]}"; do
    d="$work/$i"; mkdir "$d"
    cp zones/example.test.zone "$d/"
    sed -e 's|^# token_file = "admin.token".*|token_file = "admin.token"|' \
        -e 's|^listen = \["127.0.0.1:5353"\].*|listen = ["127.0.0.1:0"]|' \
        -e 's|^listen = "127.0.0.1:8053".*|listen = "127.0.0.1:0"|' \
        -e 's|^listen = \["127.0.0.1:8080"\].*|listen = ["127.0.0.1:0"]|' \
        -e "s|^database = \"geoip/|database = \"$PWD/geoip/|" \
        -e 's|file = "zones/|file = "|' lbdns.toml > "$d/lbdns.toml"
    echo "$token" > "$d/admin.token"; chmod 600 "$d/admin.token"
    "${bins[$i]}" --config "$d/lbdns.toml" > "$d/ready" 2> "$d/log" &
    pids+=($!)
    while [ ! -s "$d/ready" ]; do sleep 0.02; kill -0 "${pids[$i]}" || { cat "$d/log"; exit 1; }; done
    read -r _ _ _ admin _ < "$d/ready"; admins+=("${admin#admin=}")
done
n=${#bins[@]}
for r in $(seq "$rounds"); do
    for k in $(seq 0 $((n - 1))); do
        i=$(( (k + r) % n ))
        out=$(perf stat -x, -e task-clock,context-switches -p "${pids[$i]}" -o "$work/stat" -- \
              python3 bench/admin_writes.py "${admins[$i]}" "$token" "$writes" "$clients" "r${r}b${i}w")
        done_=$(sed -n 's/.*writes=\([0-9]*\).*/\1/p' <<< "$out")
        awk -F, -v b="${bins[$i]}" -v r="$r" -v w="$done_" -v rate="$(sed -n 's/.*writes_per_s=\([0-9.]*\).*/\1/p' <<< "$out")" '
            /task-clock/ { cpu = $1 } /context-switches/ { cs = $1 }
            END { printf "round %d %s: %.0f writes/s, %.0f us CPU and %.1f context switches per write\n", r, b, rate, cpu * 1000 / w, cs / w }' "$work/stat"
    done
done
