/**
 * Who may call what over D-Bus: the method table's access levels, the bus policy generated from them
 * (the committed systemd/org.ipvsbpf1.conf must be exactly that), the daemon's own check, and the bound on
 * a ListFlows reply against dbus-daemon's message size limit.
 */
import { readFileSync } from 'fs';
import * as path from 'path';
import { Message, MessageType, Variant } from 'dbus-next';
import { gidOf, groupsOfUid, mayCall, needs } from '../../src/daemon/access';
import {
  ACCESS_LEVELS, DBUS_MAX_MESSAGE_SIZE, FLOWS_GROUP, FLOWS_PAGE_MAX, MANAGER_INTERFACE, MANAGER_METHODS, flowToDbus, type FlowTuple,
} from '../../src/daemon/dbus-api';
import { callerFromCredentials } from '../../src/daemon/dbus';
import { dbusPolicy } from '../../src/daemon/dbus-policy';

const ROOT = path.resolve(__dirname, '../..');

const FILES = {
  passwd: 'root:x:0:0::/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n',
  group: `root:x:0:\nnogroup:x:65534:\nalice:x:1000:\nbob:x:1001:\n${FLOWS_GROUP}:x:998:alice, carol\n`,
};

describe('the method table', () => {
  test('every method has an access level, and every change needs root', () => {
    for (const m of MANAGER_METHODS) expect(ACCESS_LEVELS).toContain(m.access);
    expect(Object.fromEntries(MANAGER_METHODS.map((m) => [m.name, m.access]))).toEqual({
      Reload: 'root', ApplyRules: 'root', SetWeight: 'root', ListFlows: 'flows', Drain: 'root',
    });
    expect(MANAGER_METHODS.find((m) => m.name === 'ListFlows')).toEqual(expect.objectContaining({ inSignature: 'tu', outSignature: 'a(sssssstt)t' }));
  });
});

describe('the bus policy', () => {
  test('the committed systemd/org.ipvsbpf1.conf is exactly what the method table generates (npm run gen:dbus-policy)', () => {
    expect(readFileSync(path.join(ROOT, 'systemd/org.ipvsbpf1.conf'), 'utf8')).toBe(dbusPolicy());
  });

  test('default context: reads only; the group: the flows methods; root: everything', () => {
    const xml = dbusPolicy();
    const section = (open: string): string => xml.slice(xml.indexOf(open), xml.indexOf('</policy>', xml.indexOf(open)));
    const dflt = section('<policy context="default">');
    const group = section(`<policy group="${FLOWS_GROUP}">`);
    for (const m of MANAGER_METHODS) {
      const allow = `send_interface="${MANAGER_INTERFACE}" send_member="${m.name}"`;
      expect({ m: m.name, inDefault: dflt.includes(allow), inGroup: group.includes(allow) })
        .toEqual({ m: m.name, inDefault: m.access === 'read', inGroup: m.access === 'flows' });
    }
    expect(dflt).not.toMatch(/send_member="Set"/);
    expect(dflt).toContain('send_interface="org.freedesktop.DBus.Properties" send_member="GetAll"');
    expect(section('<policy user="root">')).toContain('<allow send_destination="org.ipvsbpf1"/>');
  });
});

describe("the daemon's own check", () => {
  test('read: anyone; root: uid 0 only; flows: uid 0 or a member of the group', () => {
    const gid = gidOf(FLOWS_GROUP, FILES.group)!;
    expect(gid).toBe(998);
    const cases: [string, { uid: number; gids?: number[] }, Record<string, boolean>][] = [
      ['root', { uid: 0 }, { read: true, flows: true, root: true }],
      ['nobody', { uid: 65534, gids: [65534] }, { read: true, flows: false, root: false }],
      ['a member, by the groups the bus reports', { uid: 1001, gids: [1001, gid] }, { read: true, flows: true, root: false }],
      ['a member by /etc/group when the bus reports no groups', { uid: 1000 }, { read: true, flows: true, root: false }],
      ['the bus says the process dropped the group', { uid: 1000, gids: [1000] }, { read: true, flows: false, root: false }],
      ['a non-member', { uid: 1001 }, { read: true, flows: false, root: false }],
    ];
    for (const [who, caller, want] of cases) {
      expect({ who, got: Object.fromEntries(ACCESS_LEVELS.map((a) => [a, mayCall(a, caller, FILES)])) }).toEqual({ who, got: want });
    }
    expect(mayCall('flows', { uid: 1000 }, { ...FILES, group: 'alice:x:1000:\n' })).toBe(false); // no such group: root only
    expect(groupsOfUid(1000, FILES)).toEqual([1000, 998]);
    expect(needs('flows')).toBe(`root or membership in the group ${FLOWS_GROUP}`);
  });

  test('credentials as GetConnectionCredentials returns them', () => {
    expect(callerFromCredentials({ UnixUserID: new Variant('u', 1000), UnixGroupIDs: new Variant('au', [1000, 998]), ProcessID: new Variant('u', 7) }))
      .toEqual({ uid: 1000, gids: [1000, 998] });
    expect(callerFromCredentials({ UnixUserID: new Variant('u', 0) })).toEqual({ uid: 0 });
    expect(callerFromCredentials({})).toBeUndefined();
  });
});

describe('ListFlows replies', () => {
  test('a full page of the longest possible entries marshals to far less than the bus message limit', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { marshallMessage } = require('dbus-next/lib/marshall-compat') as { marshallMessage(m: Message): [Buffer, unknown] };
    const ep = '[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535';
    const max = 2n ** 64n - 1n;
    const tuple: FlowTuple = flowToDbus({ kind: 'REPLY', proto: 'sctp', src: ep, dst: ep, natSrc: ep, natDst: ep, packets: max, bytes: max });
    const reply = new Message({
      // (the marshaller wants replySerial as a number, the typings say string)
      type: MessageType.METHOD_RETURN, serial: 2, replySerial: 1 as unknown as string, destination: ':1.4294967295', signature: 'a(sssssstt)t',
      body: [Array.from({ length: FLOWS_PAGE_MAX }, () => tuple), 1n + 0xffff_ffffn],
    });
    const [bytes] = marshallMessage(reply);
    expect(bytes.length).toBeGreaterThan(FLOWS_PAGE_MAX * 200);
    expect(bytes.length).toBeLessThan(DBUS_MAX_MESSAGE_SIZE / 16);
  });
});
