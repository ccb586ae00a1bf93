#!/bin/busybox sh
# /init of the lab VM's initramfs (busybox sh). Builds the VM's root file system and starts the payload:
#
#   hostroot (9p, read-only) = the host's /  --+
#   tmpfs (upper)                            --+--> overlay mounted at /root, the VM's root
#   labrun (9p, read-write)  = the run dir on the host, mounted at the same path inside the VM
#
# The run dir holds boot.conf (sourced here), the payload and its environment, and receives `status`.
# Mode "shell": switch_root into it with test/lab/run-payload.sh as PID 1, which powers off at the end.
# Mode "systemd": write a oneshot unit that runs the same runner, then switch_root to systemd.
PATH=/bin
export PATH

/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin

fail() {
  echo "lab-init: $*"
  [ -n "$LAB_RUN_DIR" ] && [ -d /share ] && echo "init: $*" >/share/init-error 2>/dev/null
  sync
  poweroff -f
  sleep 10
}

# Drivers for virtio, 9p and overlay, in dependency order (listed by build-initramfs.sh).
while read -r m; do
  insmod "/lab/modules/$m.ko" || fail "insmod $m failed"
done </lab/modules.order

P9=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /share /lower /rw /root
mount -t 9p -o "$P9" labrun /share || fail "cannot mount the run share (labrun)"
[ -f /share/boot.conf ] || fail "no boot.conf in the run share"
. /share/boot.conf    # LAB_RUN_DIR LAB_MODE LAB_KVER LAB_MODULES_DIR LAB_CHECKOUT
mount -t 9p -o "ro,$P9" hostroot /lower || fail "cannot mount the host root (hostroot)"
mount -t tmpfs -o mode=0755 rwlayer /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /root ||
  fail "cannot mount the overlay root"

R=/root
mount --move /proc $R/proc
mount --move /sys $R/sys
mount --move /dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
ln -sfn /proc/self/fd $R/dev/fd
ln -sfn /proc/self/fd/0 $R/dev/stdin
ln -sfn /proc/self/fd/1 $R/dev/stdout
ln -sfn /proc/self/fd/2 $R/dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm $R/dev/shm
mount -t bpf -o mode=700 bpf $R/sys/fs/bpf
mount -t tmpfs -o mode=0755,nosuid,nodev run $R/run
mount -t tmpfs -o mode=1777,nosuid,nodev tmp $R/tmp
# The host has no /lib/modules: show the unpacked stock kernel's modules there.
mkdir -p "$R/lib/modules/$LAB_KVER"
mount --bind "$R$LAB_MODULES_DIR" "$R/lib/modules/$LAB_KVER" || fail "cannot bind $LAB_MODULES_DIR"
# The run share at the same path as on the host, so LAB_OUT names the same directory on both sides.
mkdir -p "$R$LAB_RUN_DIR"
mount --move /share "$R$LAB_RUN_DIR"
# Nothing from the host's fstab, machine identity or container markers applies here (systemd would believe
# it runs in docker because of /.dockerenv, and skip udev and more).
: >$R/etc/fstab
rm -f $R/.dockerenv $R/run/.containerenv
tr -d - <$R/proc/sys/kernel/random/uuid >$R/etc/machine-id
echo lab >$R/etc/hostname
hostname lab
ip link set lo up

if [ "$LAB_MODE" = systemd ]; then
  U=$R/etc/systemd/system
  mkdir -p "$U"
  cat >"$U/lab.target" <<EOF
[Unit]
Description=Lab VM: multi-user system running the payload
Requires=multi-user.target lab-payload.service
After=multi-user.target
AllowIsolate=yes
EOF
  cat >"$U/lab-payload.service" <<EOF
[Unit]
Description=Lab VM payload
After=multi-user.target dbus.service
Wants=dbus.service
# Straight to reboot(2): the status is already on the host (9p, synchronous) and the VM is thrown away.
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate

[Service]
# exec, not oneshot: the boot transaction must finish (is-system-running = running) while the payload runs.
Type=exec
ExecStart=/bin/bash $LAB_CHECKOUT/test/lab/run-payload.sh $LAB_RUN_DIR
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/console
TimeoutStartSec=infinity
EOF
  ln -sf lab.target "$U/default.target"
  # Units that only slow a throw-away VM down (gettys, timers, waits for a network), and the host's own
  # services, which would change the kernel state tests start from (IPVS rules, nftables, iperf3 server).
  for u in getty@tty1.service serial-getty@ttyS0.service console-getty.service getty.target \
           postgresql.service e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
           dpkg-db-backup.timer fstrim.timer man-db.timer systemd-tmpfiles-clean.timer \
           systemd-timesyncd.service systemd-pstore.service systemd-networkd-wait-online.service \
           NetworkManager-wait-online.service remote-fs.target systemd-firstboot.service \
           systemd-random-seed.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
           modprobe@drm.service modprobe@dm_mod.service modprobe@loop.service systemd-binfmt.service \
           proc-sys-fs-binfmt_misc.automount systemd-sysusers.service \
           ipvsadm.service nftables.service iperf3.service systemd-networkd.service systemd-networkd.socket; do
    ln -sf /dev/null "$U/$u"
  done
  exec switch_root $R /lib/systemd/systemd
  fail "switch_root to systemd failed"
fi

# PID 1 itself must change root: kernel threads share its root, and the kernel runs modprobe for on-demand
# module loading (e.g. `ip link add type veth`) from there.
exec switch_root $R /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash "$LAB_CHECKOUT/test/lab/run-payload.sh" "$LAB_RUN_DIR" pid1
fail "switch_root to the payload failed"
