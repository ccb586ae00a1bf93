/**
 * On the host kernel, in a network namespace of its own: kube-ipvs0's addresses kept equal to a set over
 * rtnetlink (both families, /32 and /128, extra ones removed, a second run changing nothing) and the local
 * addresses read back. The host kernel has no dummy driver, so the device is a veth named kube-ipvs0 made
 * beforehand (syncDummyAddresses uses an existing device of that name); creating the dummy itself is checked
 * in the lab VM, where the driver is.
 */
import { execFileSync } from 'child_process';
import { createRtNetlink } from 'netlink';
import { inNetns } from '../../src/bpf/netns';
import { readLocalAddresses, syncDummyAddresses } from '../../src/kube/netdev';

jest.setTimeout(60_000);

const NS = `ipvsbpf-kube-${process.pid}`;
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const open = () => inNetns(NS, () => createRtNetlink());

beforeAll(() => {
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'link', 'add', 'kube-ipvs0', 'type', 'veth', 'peer', 'name', 'kpeer');
  ip('-n', NS, 'addr', 'add', '10.96.0.99/24', 'dev', 'kube-ipvs0'); // not wanted: removed, whatever its prefix
});
afterAll(() => {
  ip('netns', 'del', NS);
});

test('kube-ipvs0 holds exactly the wanted VIPs; the local addresses read back', async () => {
  expect(await syncDummyAddresses('kube-ipvs0', ['10.96.0.10', 'fd00:10:96::a', '10.96.0.20'], open))
    .toEqual({ added: ['10.96.0.10', 'fd00:10:96::a', '10.96.0.20'], removed: ['10.96.0.99'] });
  const second = await syncDummyAddresses('kube-ipvs0', ['10.96.0.10', 'FD00:10:96::B'], open);
  expect([second.added, [...second.removed].sort()]).toEqual([['fd00:10:96::b'], ['10.96.0.20', 'fd00:10:96::a']]);
  expect(await syncDummyAddresses('kube-ipvs0', ['10.96.0.10', 'fd00:10:96::b'], open)).toEqual({ added: [], removed: [] });
  const shown = ip('-n', NS, '-o', 'addr', 'show', 'dev', 'kube-ipvs0').split('\n').filter(Boolean).map((l) => l.split(/\s+/)[3]).sort();
  expect(shown).toEqual(['10.96.0.10/32', 'fd00:10:96::b/128']);
  expect(ip('-n', NS, 'route', 'show', 'table', 'local')).toContain('local 10.96.0.10 dev kube-ipvs0');
  const local = await readLocalAddresses(open);
  expect(local).toEqual(expect.arrayContaining([
    { address: '127.0.0.1', interface: 'lo' }, { address: '::1', interface: 'lo' },
    { address: '10.96.0.10', interface: 'kube-ipvs0' }, { address: 'fd00:10:96::b', interface: 'kube-ipvs0' },
  ]));
  expect(local).toHaveLength(4);
});
