/**
 * The device map (ipvs_dev_v1, see bpf/include/ipvs_bpf_abi.h): the devices the XDP fast path may
 * redirect to, keyed by ifindex. A flow whose next hop leaves through a device not in it goes to the
 * stack. Entries are ifindexes of the calling thread's network namespace (run it inside inNetns).
 */
import { native } from './native';

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** ifindexes in the map now. */
export function redirectDevices(devMap: number): number[] {
  const d = native.mapDump(devMap);
  const out: number[] = [];
  for (let i = 0; i < d.count; i++) out.push(d.keys.readUInt32LE(i * 4));
  return out.sort((a, b) => a - b);
}

/**
 * Makes the map hold exactly these devices (by name): missing ones added first, then the others removed,
 * so a device in both the old and the new set is never absent. A name with no device (an interface that
 * went away) is left out and passed to gone. Returns the ifindexes now in the map.
 */
export function setRedirectDevices(devMap: number, ifnames: readonly string[], gone?: (ifname: string) => void): number[] {
  const want = new Set<number>();
  for (const n of ifnames) {
    let i: number;
    try {
      i = native.ifIndex(n);
    } catch (e) {
      if (!gone) throw e;
      gone(n);
      continue;
    }
    want.add(i);
  }
  const have = new Set(redirectDevices(devMap));
  for (const i of want) if (!have.has(i)) native.mapUpdate(devMap, u32(i), u32(i), 0);
  for (const i of have) if (!want.has(i)) native.mapDelete(devMap, u32(i));
  return [...want].sort((a, b) => a - b);
}
