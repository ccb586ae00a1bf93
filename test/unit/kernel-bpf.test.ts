/** The patched IPVS's control state as the daemon reads it (src/daemon/kernel-bpf.ts). */
import { ownedEntries, parseControlState } from '../../src/daemon/kernel-bpf';

const STATE = 'abi 1\nmode 1\nmap_id 17\nsnat 10.9.0.1 10.9.0.2\nports 1024 65535\nfallback nat\nconns 2\n'
  + 'entries 6\ninserts 12\ndeletes 4\ncollisions 0\ntakeovers 2\nnot_owner 2\n';

test('parseControlState: key value lines, multi-word values kept whole', () => {
  const s = parseControlState(STATE);
  expect(s.snat).toBe('10.9.0.1 10.9.0.2');
  expect(s.ports).toBe('1024 65535');
  expect(s.inserts).toBe('12');
});

test('ownedEntries: the kernel\'s entries line, not derived from the counters', () => {
  expect(ownedEntries(parseControlState(STATE))).toBe(6n);
  expect(ownedEntries(parseControlState('entries 0\ninserts 9\ndeletes 3\ntakeovers 0\n'))).toBe(0n);
});

test('ownedEntries: null without the line (stock IPVS, an older module, unreadable file) or with a bad value', () => {
  expect(ownedEntries({})).toBeNull();
  expect(ownedEntries(parseControlState('inserts 3\ndeletes 1\ntakeovers 0\n'))).toBeNull();
  expect(ownedEntries(parseControlState('entries -1\n'))).toBeNull();
});
