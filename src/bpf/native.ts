/** Typed view of the libbpf addon (native/ipvs_bpf_addon.cc). All calls are synchronous. */
import * as path from 'path';

export interface FieldLayout { offset: number; size: number }
export interface StructLayout { size: number; fields: Record<string, FieldLayout> }
export interface NativeLayout {
  abiVersion: number;
  key: StructLayout;
  value: StructLayout;
  stats: string[];
  kinds: { SNAT: number; REPLY: number; FWD: number };
  flags: { NO_FASTPATH: number };
  af: { INET: number; INET6: number };
  pin: { dir: string; ctMap: string; statsMap: string; devMap: string; xdp: string; tcEgress: string; tcIngress: string; xdpPass: string };
  cfg: { section: string; DEC_TTL: number; default: number };
  defaultEntries: number;
  /** Slots of the stats map (the first stats.length are named). */
  statsSlots: number;
  /** Capacity of the device map (devices XDP may redirect to). */
  devMapEntries: number;
}
export interface LoadOptions {
  pinRoot?: string;
  maxEntries?: Record<string, number>;
  rodata?: Record<string, Buffer>;
  programs?: string[];
}
export interface LoadedObject { id: number; programs: Record<string, number>; maps: Record<string, number> }
/** tag: the kernel's hash of the instructions (map references zeroed); mapIds: the maps the program uses. */
export interface ProgInfo { id: number; name: string; type: number; tag: string; mapIds: number[] }
export interface MapInfo { id: number; name: string; type: number; keySize: number; valueSize: number; maxEntries: number; flags: number }
export type XdpMode = 'native' | 'generic';
export interface XdpState { progId: number; mode: 'none' | 'native' | 'generic' | 'hw' | 'multi' }
export type TcDirection = 'ingress' | 'egress';
export interface MapDump { count: number; keys: Buffer; values: Buffer; batched: boolean }
/** One page of a hash map; `next` is the bucket to go on from, null when the walk is complete. */
export interface MapBatch { count: number; keys: Buffer; values: Buffer; next: number | null }
export interface TestRunOptions {
  data: Buffer;
  repeat?: number;
  ctxIn?: Buffer;
  flags?: number;
  batchSize?: number;
  dataOutSize?: number;
}
export interface TestRunResult { retval: number; duration: number; dataOut: Buffer; ctxOut?: Buffer }

/** Errors thrown by the addon carry the errno. */
export interface NativeError extends Error { errno: number; code: string }
/** loadObject: a pinned map is not the one the object defines (nothing was loaded). */
export interface MapMismatchError extends NativeError { map: string; differences: string[] }

export interface NativeAddon {
  layout(): NativeLayout;
  loadObject(file: string, opts?: LoadOptions): LoadedObject;
  closeObject(id: number): void;
  closeFd(fd: number): void;
  ensureBpffs(dir: string): void;
  objPin(fd: number, file: string): void;
  objGet(file: string): number | null;
  unpin(file: string): void;
  progInfo(fd: number): ProgInfo;
  mapInfo(fd: number): MapInfo;
  progGetFdById(id: number): number;
  mapGetFdById(id: number): number;
  ifIndex(name: string): number;
  netnsEnter(nsPath: string): number;
  netnsRestore(fd: number): void;
  xdpAttach(ifindex: number, fd: number, mode: XdpMode | 'auto'): XdpMode;
  /** Atomic swap of the attached program, only if oldFd's program is the one attached (else EEXIST). */
  xdpReplace(ifindex: number, fd: number, oldFd: number, mode: XdpMode): void;
  xdpDetach(ifindex: number, mode: XdpMode | 'any'): void;
  xdpQuery(ifindex: number): XdpState;
  tcAttach(ifindex: number, dir: TcDirection, fd: number, handle: number, priority: number): number;
  tcDetach(ifindex: number, dir: TcDirection, handle: number, priority: number): void;
  tcQuery(ifindex: number, dir: TcDirection, handle: number, priority: number): number;
  numPossibleCpus(): number;
  mapLookup(fd: number, key: Buffer): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapDump(fd: number): MapDump;
  mapBatch(fd: number, token: number | null, max: number): MapBatch;
  progTestRun(fd: number, opts: TestRunOptions): TestRunResult;
}

export const repoRoot = path.resolve(__dirname, '..', '..', __dirname.includes(`${path.sep}dist${path.sep}`) ? '..' : '');

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeAddon = require(path.join(repoRoot, 'native', 'build', 'Release', 'ipvs_bpf.node')) as NativeAddon;

/** Directory holding the compiled BPF objects (built by `npm run build:bpf`). */
export const bpfObjectDir = path.join(repoRoot, 'build', 'bpf');

/** Structural: errors from the addon may come from another realm than this module's Error (jest's vm contexts). */
export function isNativeError(e: unknown): e is NativeError {
  return typeof e === 'object' && e !== null && typeof (e as Partial<NativeError>).errno === 'number'
    && typeof (e as Partial<NativeError>).message === 'string';
}

export function isMapMismatch(e: unknown): e is MapMismatchError {
  return isNativeError(e) && typeof (e as Partial<MapMismatchError>).map === 'string' && Array.isArray((e as Partial<MapMismatchError>).differences);
}
