/**
 * Bulk dumps through the netlink addon (native/ipvs_netlink_addon.cc): many dump requests answered on a
 * socket of the addon's own, one after the other, on a thread of its own, the answers handed back in
 * chunks (whole answers each) while the next ones are read, so decoding overlaps the kernel's work. A table read of 10,000 services is 10,001 dumps; done from JavaScript each one costs a few
 * promises, a send callback, a callback and a Buffer per datagram. Only the transport is native: requests
 * are built and answers decoded here, with the same tables and decoders as every other read.
 */
import * as path from 'path';

export interface BulkDumpOptions {
  recvBufferSize?: number;
  /** Bytes per recvmsg (the kernel sizes dump datagrams to it, up to 32 KiB); at least 8192. */
  readBufferSize?: number;
  timeoutMs?: number;
  /** A chunk is handed over once it holds at least this many bytes (default 256 KiB), and at the end. */
  chunkBytes?: number;
}

interface NetlinkAddon {
  /** onChunk(chunk) for each chunk, in order, then onChunk(null) or onChunk(null, failure). */
  dumps(protocol: number, requests: Buffer, opts: BulkDumpOptions, onChunk: (chunk: Buffer | null, failure?: BulkDumpFailure) => void): void;
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

/**
 * Runs the dumps in `requests`, handing each chunk of answers to `each` as it arrives. Resolves when all
 * are answered (or one was refused: its NLMSG_ERROR is in the last chunk); rejects with the addon's
 * BulkDumpFailure, or with what `each` threw (the rest of the answers is then only drained).
 */
export function streamDumps(addon: NetlinkAddon, protocol: number, requests: Buffer, opts: BulkDumpOptions, each: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let thrown: { error: unknown } | undefined;
    addon.dumps(protocol, requests, opts, (chunk, failure) => {
      if (chunk) {
        if (thrown) return;
        try {
          each(chunk);
        } catch (error) {
          thrown = { error };
        }
        return;
      }
      if (thrown) reject(thrown.error);
      else if (failure) reject(failure);
      else resolve();
    });
  });
}

export function isBulkDumpFailure(e: unknown): e is BulkDumpFailure {
  return typeof e === 'object' && e !== null && typeof (e as { errno?: unknown }).errno === 'number' && typeof (e as { answered?: unknown }).answered === 'number';
}

/** Test hook: pretend the addon is missing (null) or restore the lookup (undefined). */
export function setNetlinkAddonForTest(a: NetlinkAddon | null | undefined): void {
  addon = a;
}
