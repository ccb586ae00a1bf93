/**
 * The node's addresses and the kube-ipvs0 dummy device, over rtnetlink (the netlink package): the local
 * addresses of every interface, both families, and keeping kube-ipvs0's addresses equal to a set (each as
 * /32 or /128), creating the device when missing. Like kube-proxy the device is created and left down
 * (addresses on it still get local routes, so the node accepts traffic to the VIPs).
 */
import { createRtNetlink } from 'netlink';
import { canonicalIp, formatIp, parseIp } from './cidr';
import type { LocalAddress } from './translate';

const AF_INET = 2;
const AF_INET6 = 10;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const EEXIST = 17;
const EADDRNOTAVAIL = 99;
/** IFLA_INFO_KIND inside IFLA_LINKINFO. */
const IFLA_INFO_KIND = 1;

export type Rt = ReturnType<typeof createRtNetlink>;
/** Opens the rtnetlink socket (of this network namespace; tests open one in another). */
export type RtOpener = () => Rt;

async function withRt<T>(open: RtOpener, fn: (rt: Rt) => Promise<T>): Promise<T> {
  const rt = open();
  try {
    return await fn(rt);
  } finally {
    rt.socket.close();
  }
}

function addressText(family: number | undefined, raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  if (family === AF_INET && raw.length === 4) return formatIp({ family: 'inet', value: BigInt(raw.readUInt32BE(0)) });
  if (family === AF_INET6 && raw.length === 16) {
    let v = 0n;
    for (const b of raw) v = (v << 8n) | BigInt(b);
    return formatIp({ family: 'inet6', value: v });
  }
  return undefined;
}

function addressBytes(text: string): { family: number; bytes: Buffer; prefix: number } {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP address: ${text}`);
  const n = ip.family === 'inet' ? 4 : 16;
  const bytes = Buffer.alloc(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family: ip.family === 'inet' ? AF_INET : AF_INET6, bytes, prefix: n * 8 };
}

/** Every address of every interface (IFA_LOCAL, else IFA_ADDRESS), with its interface name. */
export function readLocalAddresses(open: RtOpener = createRtNetlink): Promise<LocalAddress[]> {
  return withRt(open, async (rt) => {
    const names = new Map<number, string>();
    for (const l of await rt.getLinks()) if (l.attrs.ifname !== undefined && l.data.index !== undefined) names.set(l.data.index, l.attrs.ifname);
    const out: LocalAddress[] = [];
    for (const a of await rt.getAddresses()) {
      const text = addressText(a.data.family, a.attrs.local ?? a.attrs.address);
      if (text) out.push({ address: text, interface: names.get(a.data.index ?? -1) ?? `ifindex ${a.data.index}` });
    }
    return out;
  });
}

/** IFLA_LINKINFO { IFLA_INFO_KIND "dummy" } as the kernel reads it (a nested attribute). */
function dummyLinkInfo(): Buffer {
  const kind = Buffer.from('dummy\0');
  const len = 4 + kind.length;
  const attr = Buffer.alloc((len + 3) & ~3);
  attr.writeUInt16LE(len, 0);
  attr.writeUInt16LE(IFLA_INFO_KIND, 2);
  kind.copy(attr, 4);
  return attr;
}

function errnoOf(e: unknown): number | undefined {
  const errno = (e as { errno?: unknown }).errno;
  return typeof errno === 'number' ? Math.abs(errno) : undefined;
}

/**
 * Makes `device` (a dummy, created when missing) hold exactly the addresses `want` (canonical text), each
 * /32 or /128. Returns what it added and removed.
 */
export function syncDummyAddresses(device: string, want: readonly string[], open: RtOpener = createRtNetlink): Promise<{ added: string[]; removed: string[] }> {
  return withRt(open, async (rt) => {
    let index = (await rt.getLinks()).find((l) => l.attrs.ifname === device)?.data.index;
    if (index === undefined) {
      try {
        await rt.newLink({}, { ifname: device, linkinfo: dummyLinkInfo() }, { flags: NLM_F_CREATE | NLM_F_EXCL });
      } catch (e) {
        if (errnoOf(e) !== EEXIST) throw new Error(`cannot create the dummy device ${device}: ${(e as Error).message}`);
      }
      index = (await rt.getLinks()).find((l) => l.attrs.ifname === device)?.data.index;
      if (index === undefined) throw new Error(`the dummy device ${device} does not appear after creating it`);
    }
    const have = new Map<string, number>();
    for (const a of await rt.getAddresses()) {
      if (a.data.index !== index) continue;
      const t = addressText(a.data.family, a.attrs.local ?? a.attrs.address);
      if (t) have.set(t, a.data.prefixlen ?? 0);
    }
    const wanted = new Set(want.map((w) => canonicalIp(w) ?? w));
    const added: string[] = [];
    const removed: string[] = [];
    for (const w of wanted) {
      if (have.has(w)) continue;
      const { family, bytes, prefix } = addressBytes(w);
      try {
        await rt.newAddress({ family, prefixlen: prefix, index }, { local: bytes, address: bytes }, { flags: NLM_F_CREATE | NLM_F_EXCL });
        added.push(w);
      } catch (e) {
        if (errnoOf(e) !== EEXIST) throw new Error(`cannot add ${w}/${prefix} to ${device}: ${(e as Error).message}`);
      }
    }
    for (const [h, prefix] of have) {
      if (wanted.has(h)) continue;
      const { family, bytes } = addressBytes(h);
      try {
        await rt.delAddress({ family, prefixlen: prefix, index }, { local: bytes, address: bytes });
        removed.push(h);
      } catch (e) {
        if (errnoOf(e) !== EADDRNOTAVAIL) throw new Error(`cannot remove ${h} from ${device}: ${(e as Error).message}`);
      }
    }
    return { added, removed };
  });
}
