/**
 * The D-Bus bus policy (systemd/org.ipvsbpf1.conf), generated from the method table (dbus-api.ts), so the
 * bus and the daemon's own check (access.ts) cannot disagree. `npm run gen:dbus-policy` rewrites the file;
 * a unit test fails when the committed file differs from what this produces.
 */
import { BUS_NAME, FLOWS_GROUP, MANAGER_INTERFACE, MANAGER_METHODS, type Access } from './dbus-api';

/** What any local user may send besides the `read` methods: introspection, ping, property reads. */
const READ_MEMBERS: readonly { iface: string; member?: string }[] = [
  { iface: 'org.freedesktop.DBus.Introspectable' },
  { iface: 'org.freedesktop.DBus.Peer' },
  { iface: 'org.freedesktop.DBus.Properties', member: 'Get' },
  { iface: 'org.freedesktop.DBus.Properties', member: 'GetAll' },
];

function allow(iface: string, member?: string): string {
  return `    <allow send_destination="${BUS_NAME}" send_interface="${iface}"${member ? ` send_member="${member}"` : ''}/>`;
}

function methods(access: Access): string[] {
  return MANAGER_METHODS.filter((m) => m.access === access).map((m) => allow(MANAGER_INTERFACE, m.name));
}

export function dbusPolicy(): string {
  const names = (a: Access): string => MANAGER_METHODS.filter((m) => m.access === a).map((m) => m.name).join(', ') || 'none';
  return [
    '<?xml version="1.0"?>',
    '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"',
    ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">',
    '<!-- ipvs-bpf\'s D-Bus policy. Generated from MANAGER_METHODS (src/daemon/dbus-api.ts) by',
    '     `npm run gen:dbus-policy`; do not edit. The daemon checks every caller again itself.',
    `     root: owns the name, calls everything (${names('root')}, property writes).`,
    `     group ${FLOWS_GROUP}: ${names('flows')} (flow tuples are client addresses).`,
    `     anyone: introspection, property reads${names('read') === 'none' ? '' : `, ${names('read')}`}. -->`,
    '<busconfig>',
    '  <policy user="root">',
    `    <allow own="${BUS_NAME}"/>`,
    `    <allow send_destination="${BUS_NAME}"/>`,
    '  </policy>',
    '',
    `  <policy group="${FLOWS_GROUP}">`,
    ...methods('flows'),
    '  </policy>',
    '',
    '  <policy context="default">',
    ...READ_MEMBERS.map((r) => allow(r.iface, r.member)),
    ...methods('read'),
    '  </policy>',
    '</busconfig>',
    '',
  ].join('\n');
}

if (require.main === module) process.stdout.write(dbusPolicy());
