#!/bin/bash
# Lab VM payload of test/integration/keepalived-oracle.test.ts (one boot, shell mode): the same
# keepalived.conf files through Debian's keepalived (-C: checkers only) and through ipvs-bpf (mode ipvs),
# one after the other on a flushed IPVS table.
#   1. tables: the corpus (test/fixtures/keepalived/*.conf, included from one file) -> ipvsadm -Sn and
#      -Ln --thresholds of each, once the table is stable;
#   2. reactions (test/fixtures/keepalived-lab/react.conf): socat real servers on a dummy interface; kill a
#      listener, time until its real server is out, restart it, time until it is back; the same for the
#      quorum virtual server (sorry server in, inhibited real server at weight 0) and back.
# Writes $LAB_OUT/<impl>.<phase>.Sn and results.kv (<impl>.<phase>.ms=...). The test judges them.
set -u
cd "$LAB_CHECKOUT"
OUT="$LAB_OUT"
KV="$OUT/results.kv"
FIX="$LAB_CHECKOUT/test/fixtures/keepalived"
REACT="$LAB_CHECKOUT/test/fixtures/keepalived-lab/react.conf"
W=$(mktemp -d)
kv() { echo "$1=$2" >> "$KV"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

modprobe ip_vs
for s in rr wrr lc wlc sh mh sed; do modprobe "ip_vs_$s"; done
ip link add ka0 type dummy && ip link set ka0 up
for i in 1 2 3 4 5; do ip addr add "10.60.1.$i/32" dev ka0; done

# The corpus as one keepalived.conf (keepalived reads one file; includes are relative to each file).
: > "$W/corpus.conf"
for f in "$FIX"/*.conf; do echo "include $f" >> "$W/corpus.conf"; done
CORPUS_FILES=("$FIX"/*.conf)
CORPUS_LIST=$(IFS=,; echo "${CORPUS_FILES[*]}")

# Waits until ipvsadm -Sn has $2 services and is the same twice 0.5 s apart; saves it as $1. Max 40 s.
stable() {
  local file=$1 want=$2 prev='' cur t0
  t0=$(now_ms)
  while :; do
    cur=$(ipvsadm -Sn)
    if [ "$(grep -c '^-A' <<<"$cur")" -ge "$want" ] && [ "$cur" = "$prev" ]; then break; fi
    if [ $(( $(now_ms) - t0 )) -gt 40000 ]; then echo "stable: timed out for $file" >&2; break; fi
    prev=$cur
    sleep 0.5
  done
  printf '%s\n' "$cur" > "$file"
}

# Polls every 0.2 s until `$@` succeeds (max 20 s); prints the milliseconds it took (-1 on timeout).
within() {
  local t0 t
  t0=$(now_ms)
  while ! "$@"; do
    t=$(( $(now_ms) - t0 ))
    if [ "$t" -gt 20000 ]; then echo -1; return; fi
    sleep 0.2
  done
  echo $(( $(now_ms) - t0 ))
}
has() { ipvsadm -Sn | grep -q -- "$1"; }
hasnt() { ! has "$1"; }
has_w() { ipvsadm -Sn | grep -q -- "-r $1 .* -w $2\$"; }

declare -A LPID
# An HTTP responder that reads the request before it answers: one that answers without reading makes the
# kernel reset the connection when the request arrives, and keepalived's HTTP_GET counts that as a failure.
cat > "$W/http-200.sh" <<'EOF'
while IFS= read -r line; do line=${line%$'\r'}; [ -z "$line" ] && break; done
printf 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'
EOF
listen() { # listen <last octet>: a TCP listener on 10.60.1.<n>:80 answering HTTP 200 to any request
  socat "TCP-LISTEN:80,bind=10.60.1.$1,fork,reuseaddr" EXEC:"bash $W/http-200.sh" 2>/dev/null &
  LPID[$1]=$!
}
unlisten() { kill "${LPID[$1]}" 2>/dev/null; wait "${LPID[$1]}" 2>/dev/null; }

KA_PID=''
start_keepalived() { # start_keepalived <conf> <tag>
  keepalived -n -l -D -C -f "$1" -p "$W/ka-$2.pid" -c "$W/ka-$2-checkers.pid" > "$OUT/keepalived.$2.log" 2>&1 &
  KA_PID=$!
}
stop_keepalived() { kill -TERM "$KA_PID" 2>/dev/null; wait "$KA_PID" 2>/dev/null; ipvsadm -C; }

BPF_PID=''
start_ipvsbpf() { # start_ipvsbpf <keepalived paths, comma-separated> <tag>
  cat > "$W/config-$2.json" <<EOF
{ "rules": [], "keepalived": [$(sed 's/[^,]*/"&"/g' <<<"$1")], "mode": "ipvs",
  "dbus": { "bus": "none" }, "log": { "level": "info" } }
EOF
  node bin/ipvs-bpf --config "$W/config-$2.json" > "$OUT/ipvs-bpf.$2.log" 2>&1 &
  BPF_PID=$!
}
stop_ipvsbpf() { kill -TERM "$BPF_PID" 2>/dev/null; wait "$BPF_PID" 2>/dev/null; ipvsadm -C; }

CORPUS_SERVICES=$(cat "$FIX"/*.expected | grep -c '^-A')

# ---- 1. tables
t=$(now_ms); start_keepalived "$W/corpus.conf" corpus
stable "$OUT/keepalived.corpus.Sn" "$CORPUS_SERVICES"; ipvsadm -Ln --thresholds > "$OUT/keepalived.corpus.thresholds"
kv keepalived.corpus.ms $(( $(now_ms) - t )); stop_keepalived
t=$(now_ms); start_ipvsbpf "$CORPUS_LIST" corpus
stable "$OUT/ipvs-bpf.corpus.Sn" "$CORPUS_SERVICES"; ipvsadm -Ln --thresholds > "$OUT/ipvs-bpf.corpus.thresholds"
kv ipvs-bpf.corpus.ms $(( $(now_ms) - t )); stop_ipvsbpf

# ---- 2. reactions, the same steps for each implementation
react() { # react <impl>
  local impl=$1
  for i in 1 2 3 4; do listen "$i"; done
  if [ "$impl" = keepalived ]; then start_keepalived "$REACT" react; else start_ipvsbpf "$REACT" react; fi
  # All real servers in (first checks 1 s after the start), the dynamic weight applied (9 -> 5 - 2 = 3).
  kv "$impl.start.ms" "$(within has_w 10.60.1.5:53 3)"
  kv "$impl.start2.ms" "$(within has 10.60.1.1:80)"
  stable "$OUT/$impl.start.Sn" 3
  unlisten 1
  kv "$impl.rs_down.ms" "$(within hasnt 10.60.1.1:80)"
  ipvsadm -Sn > "$OUT/$impl.rs_down.Sn"
  listen 1
  kv "$impl.rs_up.ms" "$(within has 10.60.1.1:80)"
  ipvsadm -Sn > "$OUT/$impl.rs_up.Sn"
  unlisten 2
  kv "$impl.http_down.ms" "$(within hasnt 10.60.1.2:80)"
  listen 2
  kv "$impl.http_up.ms" "$(within has 10.60.1.2:80)"
  unlisten 3
  kv "$impl.quorum_down.ms" "$(within has 10.60.1.9:80)"
  sleep 1.5
  ipvsadm -Sn > "$OUT/$impl.quorum_down.Sn"
  listen 3
  kv "$impl.quorum_up.ms" "$(within hasnt 10.60.1.9:80)"
  sleep 1.5
  ipvsadm -Sn > "$OUT/$impl.quorum_up.Sn"
  if [ "$impl" = keepalived ]; then stop_keepalived; else stop_ipvsbpf; fi
  for i in 1 2 3 4; do unlisten "$i"; done
}
t=$(now_ms); react keepalived; kv keepalived.react.ms $(( $(now_ms) - t ))
t=$(now_ms); react ipvs-bpf; kv ipvs-bpf.react.ms $(( $(now_ms) - t ))
keepalived --version > "$OUT/keepalived.version" 2>&1
echo done > "$OUT/done"
