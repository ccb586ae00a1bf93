#!/bin/bash
# Runs in the lab VM under real systemd (init: 'systemd'), as root, stock 6.1 IPVS: installs the service,
# drives it the way an operator does, and records each step's stdout, stderr and exit status under
# $LAB_OUT/daemon/<step>.{out,err,rc} for test/integration/daemon-systemd.test.ts to judge.
set -u
out=$LAB_OUT/daemon
mkdir -p "$out"
rec() { # rec <step> <command...>
  local step=$1
  shift
  "$@" >"$out/$step.out" 2>"$out/$step.err"
  echo $? >"$out/$step.rc"
}
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
# a user in the group ipvs-bpf (install-service creates the group), with its groups from /etc/group
as_member() { setpriv --reuid=flowreader --regid=nogroup --init-groups "$@"; }
M=(org.ipvsbpf1 /org/ipvsbpf1 org.ipvsbpf1.Manager)
SEND=(dbus-send --system --print-reply --dest=org.ipvsbpf1 /org/ipvsbpf1)
MI=org.ipvsbpf1.Manager
# journal_count <text>: lines of the unit's journal containing it
journal_count() { journalctl -u ipvs-bpf -o cat --no-pager | grep -c -F -- "$1"; }

systemctl is-system-running --wait >/dev/null 2>&1
rec install npm run --silent install-service
rec group getent group ipvs-bpf
useradd --no-create-home --gid nogroup --groups ipvs-bpf --shell /usr/sbin/nologin flowreader
cat >/etc/ipvs-bpf/rules <<'EOF'
# two services
-A -t 10.10.0.1:80 -s wrr
-a -t 10.10.0.1:80 -r 10.10.1.1:80 -m -w 1
-a -t 10.10.0.1:80 -r 10.10.1.2:80 -m -w 2
-A -u 10.10.0.1:53 -s rr
-a -u 10.10.0.1:53 -r 10.10.1.1:53 -m -w 1
EOF
rec check-config /usr/local/sbin/ipvs-bpf --check-config

# start
rec start systemctl start ipvs-bpf
rec is-active systemctl is-active ipvs-bpf
rec save-start ipvsadm -Sn
rec main-pid systemctl show -P MainPID ipvs-bpf

# D-Bus: introspection and properties, as root and as any user
rec introspect busctl introspect --no-pager "${M[0]}" "${M[1]}"
rec introspect-nobody as_nobody busctl introspect --no-pager "${M[0]}" "${M[1]}"
rec prop-mode as_nobody busctl get-property "${M[@]}" Mode
rec prop-reason as_nobody busctl get-property "${M[@]}" ModeReason
rec prop-version as_nobody busctl get-property "${M[@]}" Version
rec prop-services as_nobody busctl --json=short get-property "${M[@]}" Services
rec status ipvs-bpfctl status
rec status-json-nobody as_nobody ipvs-bpfctl status -o json
rec list-flows-nobody as_nobody busctl call "${M[@]}" ListFlows tu 0 0
rec list-flows-nobody-send as_nobody "${SEND[@]}" "$MI.ListFlows" uint64:0 uint32:0
rec list-flows-member as_member busctl call "${M[@]}" ListFlows tu 0 0
rec prop-mode-member as_member busctl get-property "${M[@]}" Mode

# PropertiesChanged while the rules change
dbus-monitor --system "type='signal',sender='org.ipvsbpf1',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'" \
  >"$out/monitor.out" 2>&1 &
monitor=$!
sleep 2

# reload with changed rules: one weight changed, one server removed, one added, udp service removed
cat >/etc/ipvs-bpf/rules <<'EOF'
-A -t 10.10.0.1:80 -s wrr
-a -t 10.10.0.1:80 -r 10.10.1.1:80 -m -w 5
-a -t 10.10.0.1:80 -r 10.10.1.3:80 -m -w 1
EOF
rec reload systemctl reload ipvs-bpf
rec save-reload ipvsadm -Sn
rec prop-last-reload busctl get-property "${M[@]}" LastReload

# a broken rules file: reload fails, nothing changes, the journal names file:line
cp /etc/ipvs-bpf/rules /tmp/good.rules
printf -- '-A -t 10.10.0.9:80 -s wrr\n-a -t 10.10.0.9:80 -r 10.10.1.9:80 -m -w lots\n' >>/etc/ipvs-bpf/rules
rec reload-bad systemctl reload ipvs-bpf
rec save-reload-bad ipvsadm -Sn
rec is-active-after-bad systemctl is-active ipvs-bpf
cp /tmp/good.rules /etc/ipvs-bpf/rules

# non-root: reads pass (above), every change is denied
rec deny-reload as_nobody busctl call "${M[@]}" Reload
rec deny-apply as_nobody busctl call "${M[@]}" ApplyRules s -- '-A -t 10.10.0.7:80'
rec deny-weight as_nobody busctl call "${M[@]}" SetWeight ssu 'tcp 10.10.0.1:80' '10.10.1.1:80' 9
rec deny-loglevel as_nobody busctl set-property org.ipvsbpf1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel s debug
rec save-after-deny ipvsadm -Sn

# the daemon's own check, behind a bus policy that lets anyone send anything to the daemon
printf '%s\n' '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"' \
  ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">' \
  '<busconfig><policy context="default"><allow send_destination="org.ipvsbpf1"/></policy></busconfig>' \
  >/etc/dbus-1/system.d/zz-ipvs-bpf-test-open.conf
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
# (dbus-send prints the error's text; busctl shows any AccessDenied as "Access denied")
rec open-reload as_nobody "${SEND[@]}" "$MI.Reload"
rec open-apply as_nobody "${SEND[@]}" "$MI.ApplyRules" string:$'-A -t 10.10.0.7:80 -s rr\n'
rec open-weight as_nobody "${SEND[@]}" "$MI.SetWeight" 'string:tcp 10.10.0.1:80' string:10.10.1.1:80 uint32:9
rec open-flows as_nobody "${SEND[@]}" "$MI.ListFlows" uint64:0 uint32:0
rec open-loglevel as_nobody dbus-send --system --print-reply --dest=org.ipvsbpf1 /org/freedesktop/LogControl1 \
  org.freedesktop.DBus.Properties.Set string:org.freedesktop.LogControl1 string:LogLevel variant:string:debug
rec open-flows-member as_member busctl call "${M[@]}" ListFlows tu 0 0
rec open-save ipvsadm -Sn
rm /etc/dbus-1/system.d/zz-ipvs-bpf-test-open.conf
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig

# root: the same changes pass
rec weight busctl call "${M[@]}" SetWeight ssu 'tcp 10.10.0.1:80' '10.10.1.1:80' 9
rec weight-missing busctl call "${M[@]}" SetWeight ssu 'tcp 10.10.0.1:80' '10.99.0.1:80' 9
rec apply busctl call "${M[@]}" ApplyRules s -- $'-A -t 10.10.0.7:80 -s rr\n-a -t 10.10.0.7:80 -r 10.10.1.7:80 -m\n'
rec apply-bad busctl call "${M[@]}" ApplyRules s -- $'-A -t 10.10.0.8:80 -s rr\n-A -t 10.10.0.7:80 -s rr\n'
rec save-after-root ipvsadm -Sn
rec list-flows busctl call "${M[@]}" ListFlows tu 0 0
rec service-log-level systemctl service-log-level ipvs-bpf debug
rec prop-loglevel busctl get-property org.ipvsbpf1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel
sleep 2
kill $monitor

# restart: the rules stay, the daemon finds nothing to change; stop leaves IPVS as it is
rec restart systemctl restart ipvs-bpf
rec is-active-restart systemctl is-active ipvs-bpf
rec save-restart ipvsadm -Sn
rec main-pid-restart systemctl show -P MainPID ipvs-bpf
rec stop systemctl stop ipvs-bpf
rec save-stop ipvsadm -Sn

# a broken configuration: start fails with a clear message, no restart loop, IPVS untouched
cp /etc/ipvs-bpf/config.json /tmp/config.json
echo '{ "mode": "fast", "rules": ["/etc/ipvs-bpf/rules"] }' >/etc/ipvs-bpf/config.json
rec start-bad systemctl start ipvs-bpf
sleep 3
rec is-active-bad systemctl is-active ipvs-bpf
rec restarts-bad systemctl show -P NRestarts ipvs-bpf
rec status-exit-bad systemctl show -P ExecMainStatus ipvs-bpf
rec save-bad ipvsadm -Sn
rec status-not-running ipvs-bpfctl status

# mode bpf with an SNAT address this host does not have: a configuration error naming the key (exit 78)
echo '{ "mode": "bpf", "interfaces": ["lo"], "snat": { "addresses": ["10.9.0.1"] }, "rules": ["/etc/ipvs-bpf/rules"] }' >/etc/ipvs-bpf/config.json
rec check-bpf-bad /usr/local/sbin/ipvs-bpf --check-config
rec start-bpf-bad systemctl start ipvs-bpf
sleep 3
rec is-active-bpf-bad systemctl is-active ipvs-bpf
rec restarts-bpf-bad systemctl show -P NRestarts ipvs-bpf
rec status-exit-bpf-bad systemctl show -P ExecMainStatus ipvs-bpf
cp /tmp/config.json /etc/ipvs-bpf/config.json

# the bus goes away: the daemon logs it and exits non-zero, systemd starts it again, it serves again
rec dbus-start systemctl start ipvs-bpf
rec dbus-pid-before systemctl show -P MainPID ipvs-bpf
rec dbus-restart systemctl restart dbus
for i in $(seq 1 300); do
  pid=$(systemctl show -P MainPID ipvs-bpf)
  [ "$pid" != 0 ] && [ "$pid" != "$(cat "$out/dbus-pid-before.out")" ] && systemctl is-active -q ipvs-bpf && break
  sleep 0.2
done
rec dbus-pid-after systemctl show -P MainPID ipvs-bpf
rec dbus-restarts-after systemctl show -P NRestarts ipvs-bpf
rec dbus-mode-after as_nobody busctl get-property "${M[@]}" Mode
rec dbus-save-after ipvsadm -Sn

# stop while a large reload is being applied: IPVS is left with the old or the new table, never a mix.
# ExecStopPost (privileged: +) records the table between the old process's exit and any new start; its
# journal lines (identifier "sh") time the main process's exit and the dump.
mkdir -p /etc/systemd/system/ipvs-bpf.service.d
printf '%s\n' '[Service]' \
  'ExecStopPost=+/bin/sh -c "echo main process gone >&2; ipvsadm -Sn >/run/ipvs-after-stop.rules; echo table recorded >&2"' \
  >/etc/systemd/system/ipvs-bpf.service.d/zz-test-capture.conf
systemctl daemon-reload
# big_rules <weight>: $BIG services x 3 real servers (one awk, not a shell loop: seconds less under TCG)
BIG=${DS_BIG_SERVICES:-4000}
big_rules() {
  awk -v n="$BIG" -v w="$1" 'BEGIN {
    for (s = 0; s < n; s++) {
      vip = sprintf("10.20.%d.%d:80", int(s / 250), s % 250 + 1)
      print "-A -t " vip " -s wrr"
      for (d = 1; d <= 3; d++) print "-a -t " vip " -r 10.30.0." d ":80 -m -w " w
    }
  }'
}
# reload_then <systemctl verb> <step>: SIGHUP, and the stop or restart as soon as the daemon logs that it
# applies its changes. The journal is followed (inotify), not polled: a poll costs a journalctl start
# (~0.5 s under TCG) each round, and the stop has to land while the changes are still being applied.
reload_then() {
  local n line t0 fd follower
  n=$(journal_count 'applying ')
  rm -f /run/ipvs-after-stop.rules
  # --no-tail: every stored line, so none is missed between the count above and the follow
  exec {fd}< <(exec journalctl -u ipvs-bpf -f --no-tail -o cat --no-pager 2>/dev/null)
  follower=$!
  kill -HUP "$(systemctl show -P MainPID ipvs-bpf)"
  while IFS= read -r -t 300 line <&"$fd"; do
    [[ $line == *'applying '* ]] && { n=$((n - 1)); [ "$n" -lt 0 ] && break; }
  done
  kill "$follower" 2>/dev/null
  exec {fd}<&-
  t0=$(date +%s%N)
  rec "$2" systemctl "$1" ipvs-bpf
  echo $((($(date +%s%N) - t0) / 1000000)) >"$out/$2.ms"
  # how the old process ended: "success", or "timeout" when systemd had to kill it (TimeoutStopSec)
  systemctl show -P Result ipvs-bpf >"$out/$2.result"
  cp /run/ipvs-after-stop.rules "$out/$2.after-stop.rules"
}
ipvsadm -Sn >"$out/big1.old.rules"
big_rules 1 >/etc/ipvs-bpf/rules
reload_then restart big1-restart
rec big1-active systemctl is-active ipvs-bpf
ipvsadm -Sn >"$out/big1.new.rules"
# every weight changes, then the kernel refuses the last change (no such sync interface): the rollback
# of thousands of changes runs under the stop
{ big_rules 2; echo '--start-daemon master --mcast-interface nosuch0 --syncid 9'; } >/etc/ipvs-bpf/rules
reload_then stop big2-stop
ipvsadm -Sn >"$out/big2.final.rules"
rm -r /etc/systemd/system/ipvs-bpf.service.d
systemctl daemon-reload

# the journal: levels as priorities, no timestamps or colour in the messages
journalctl -u ipvs-bpf --no-pager -o json >"$out/journal.json" 2>&1
journalctl -u ipvs-bpf --no-pager -o short >"$out/journal.txt" 2>&1
journalctl -u ipvs-bpf --no-pager -o short-monotonic >"$out/journal-mono.txt" 2>&1
systemd-analyze security --no-pager ipvs-bpf >"$out/security.txt" 2>&1
exit 0
