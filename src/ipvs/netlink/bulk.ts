/**
 * Bulk dumps through the netlink addon (native/ipvs_netlink_addon.cc): many dump requests answered on a
 * socket of the addon's own, one after the other, on a worker thread, all the answers returned as one
 * buffer. A table read of 10,000 services is 10,001 dumps; done from JavaScript each one costs a few
 * promises, a send callback, a callback and a Buffer per datagram. Only the transport is native: requests
 * are built and answers decoded here, with the same tables and decoders as every other read.
 */
import * as path from 'path';

interface NetlinkAddon {
  dumps(protocol: number, requests: Buffer, opts: { recvBufferSize?: number; readBufferSize?: number; timeoutMs?: number }): Promise<Buffer>;
}

/** What the addon rejects with: the errno and how many requests were answered before it. */
export interface BulkDumpFailure extends Error {
  errno: number;
  answered: number;
}

let addon: NetlinkAddon | null | undefined;

/** The addon, or null when it is not built (then callers read through NetlinkChannel). */
export function netlinkAddon(): NetlinkAddon | null {
  if (addon !== undefined) return addon;
  // dist/src/ipvs/netlink -> the checkout (four levels up); src/ipvs/netlink under ts-jest (three).
  const root = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../../..' : '../../..');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(path.join(root, 'native', 'build', 'Release', 'ipvs_netlink.node')) as NetlinkAddon;
  } catch {
    addon = null;
  }
  return addon;
}

export function isBulkDumpFailure(e: unknown): e is BulkDumpFailure {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number';
}

/** Test hook: pretend the addon is missing (null) or restore the lookup (undefined). */
export function setNetlinkAddonForTest(a: NetlinkAddon | null | undefined): void {
  addon = a;
}
