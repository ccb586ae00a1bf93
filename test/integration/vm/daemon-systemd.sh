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
M=(org.ipvsbpf1 /org/ipvsbpf1 org.ipvsbpf1.Manager)

systemctl is-system-running --wait >/dev/null 2>&1
rec install npm run --silent install-service
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
rec list-flows-nobody as_nobody busctl call "${M[@]}" ListFlows

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

# root: the same changes pass
rec weight busctl call "${M[@]}" SetWeight ssu 'tcp 10.10.0.1:80' '10.10.1.1:80' 9
rec weight-missing busctl call "${M[@]}" SetWeight ssu 'tcp 10.10.0.1:80' '10.99.0.1:80' 9
rec apply busctl call "${M[@]}" ApplyRules s -- $'-A -t 10.10.0.7:80 -s rr\n-a -t 10.10.0.7:80 -r 10.10.1.7:80 -m\n'
rec apply-bad busctl call "${M[@]}" ApplyRules s -- $'-A -t 10.10.0.8:80 -s rr\n-A -t 10.10.0.7:80 -s rr\n'
rec save-after-root ipvsadm -Sn
rec list-flows busctl call "${M[@]}" ListFlows
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

# the journal: levels as priorities, no timestamps or colour in the messages
journalctl -u ipvs-bpf --no-pager -o json >"$out/journal.json" 2>&1
journalctl -u ipvs-bpf --no-pager -o short >"$out/journal.txt" 2>&1
systemd-analyze security --no-pager ipvs-bpf >"$out/security.txt" 2>&1
exit 0
