#!/bin/bash
# Sourced by oracle-payload.sh (KUBE_THEN) after kube-proxy's table is recorded and cleaned up: the same node
# (addresses, starting IPVS state, KubeProxyConfiguration, apiserver) now runs ipvs-bpf in kubernetes mode,
# plain IPVS, no D-Bus, and its table is recorded as ours.{ipvs,addrs,timeouts} (+ ours.log; timing-ours:
# ours_sync_s = from its start to its "in sync" log line). A failure is written to ours.error and the payload
# goes on (kube-proxy's part stands on its own).
modprobe dummy 2>/dev/null || true   # kube-ipvs0
ours_t0=$(now)
node bin/ipvs-bpf --mode=ipvs --dbus=none --rules= --kube-proxy-config "$KUBE_PROXY_CONFIG" \
  --kubeconfig "$KUBE_VM_KUBECONFIG" --node-name "$KUBE_NODE_NAME" >"$out/ours.log" 2>&1 &
ours_pid=$!
ours_deadline=$(( $(date +%s) + ${KUBE_SYNC_TIMEOUT_S:-180} ))
until grep -q 'kubernetes: in sync' "$out/ours.log"; do
  if ! kill -0 "$ours_pid" 2>/dev/null; then
    echo "ipvs-bpf exited before it was in sync" >"$out/ours.error"; return 0
  fi
  if (( $(date +%s) > ours_deadline )); then
    echo "ipvs-bpf not in sync after ${KUBE_SYNC_TIMEOUT_S:-180} s" >"$out/ours.error"; kill "$ours_pid"; return 0
  fi
  sleep 0.5
done
ours_t1=$(now)
wait_ipvs_stable
record_tables ours
echo "ours_sync_s=$(awk "BEGIN{print $ours_t1-$ours_t0}")" >"$out/timing-ours"
kill "$ours_pid"; wait "$ours_pid" || true
