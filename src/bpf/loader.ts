/**
 * Loads the data path, or re-opens it: maps and programs are pinned under the pin directory
 * (default /sys/fs/bpf/ipvs-bpf), so a restarted daemon gets the very same map (live flows)
 * and programs (still attached) back.
 */
import * as fs from 'fs';
import * as path from 'path';
import { layout } from './abi';
import { bpfObjectDir, LoadedObject, LoadOptions, native } from './native';

export interface DatapathConfig {
  /** bpffs directory for pins; default from the ABI header. */
  pinDir?: string;
  /** Conntrack map capacity (entries; a connection uses three). Fixed once the map is pinned. */
  maxEntries?: number;
  /** XDP fast path decrements TTL / hop limit (default true). */
  decrementTtl?: boolean;
  /** Load fresh programs even if pinned ones exist (maps are still reused). */
  reloadPrograms?: boolean;
  /** Where the compiled objects are; default build/bpf. */
  objectDir?: string;
}

export interface DatapathPrograms { xdp: number; xdpPass: number; tcEgress: number; tcIngress: number }

export interface Datapath {
  pinDir: string;
  ctMap: number;
  statsMap: number;
  progs: DatapathPrograms;
  /** true if the programs were re-opened from pins rather than loaded. */
  reused: boolean;
  /** Object files the programs were loaded from (empty when re-opened from pins). */
  objects: string[];
  close(): void;
}

const BPF_MAP_TYPE_HASH = 1;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;

const PROG_PINS: Record<keyof DatapathPrograms, { pin: string; object: string; program: string }> = {
  xdp: { pin: layout.pin.xdp, object: 'ipvs_xdp.bpf.o', program: 'ipvs_xdp_fastpath' },
  xdpPass: { pin: layout.pin.xdpPass, object: 'ipvs_xdp.bpf.o', program: 'ipvs_xdp_pass' },
  tcEgress: { pin: layout.pin.tcEgress, object: 'ipvs_tc.bpf.o', program: 'ipvs_tc_snat' },
  tcIngress: { pin: layout.pin.tcIngress, object: 'ipvs_tc.bpf.o', program: 'ipvs_tc_reply' },
};

/**
 * Builds of an object to try first, same programs and maps: ipvs_tc_kctx.bpf.o reads the skb's
 * checksum state itself (bpf_cast_to_kern_ctx, kernels >= 6.3) and saves a helper call per
 * packet; where it does not load (Debian's 6.1) the portable build is used.
 */
const PREFERRED: Record<string, string> = { 'ipvs_tc.bpf.o': 'ipvs_tc_kctx.bpf.o' };

function loadPreferred(objectDir: string, object: string, opts: LoadOptions): { obj: LoadedObject; file: string } {
  const better = PREFERRED[object];
  if (better && fs.existsSync(path.join(objectDir, better))) {
    try {
      return { obj: native.loadObject(path.join(objectDir, better), opts), file: better };
    } catch {
      /* kernel without what it needs: the portable build below */
    }
  }
  return { obj: native.loadObject(path.join(objectDir, object), opts), file: object };
}

function cfgWord(cfg: DatapathConfig): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(cfg.decrementTtl === false ? 0 : layout.cfg.DEC_TTL);
  return b;
}

/** Refuses a pinned map that is not the one this ABI defines (type, name, sizes, capacity). */
function checkMap(fd: number, want: { name: string; type: number; keySize: number; valueSize: number; maxEntries?: number }): void {
  const mi = native.mapInfo(fd);
  const bad: string[] = [];
  if (mi.name !== want.name) bad.push(`name ${mi.name}`);
  if (mi.type !== want.type) bad.push(`type ${mi.type}`);
  if (mi.keySize !== want.keySize || mi.valueSize !== want.valueSize) bad.push(`sizes ${mi.keySize}/${mi.valueSize}`);
  if (want.maxEntries !== undefined && mi.maxEntries !== want.maxEntries) {
    bad.push(`capacity ${mi.maxEntries} (configured ${want.maxEntries}; remove the pin to resize, which drops all flows)`);
  }
  if (bad.length) throw new Error(`pinned map ${want.name} does not match ABI v${layout.abiVersion}: ${bad.join(', ')}`);
}

function openPin(file: string): number | null {
  return native.objGet(file);
}

export function openDatapath(cfg: DatapathConfig = {}): Datapath {
  const pinDir = cfg.pinDir ?? layout.pin.dir;
  const objectDir = cfg.objectDir ?? bpfObjectDir;
  const maxEntries = cfg.maxEntries ?? layout.defaultEntries;
  native.ensureBpffs(pinDir);

  const names = Object.keys(PROG_PINS) as (keyof DatapathPrograms)[];
  const loadedObjects: string[] = [];
  let fds = names.map((n) => (cfg.reloadPrograms ? null : openPin(path.join(pinDir, PROG_PINS[n].pin))));
  const reused = fds.every((fd) => fd !== null);
  if (!reused) {
    for (const fd of fds) if (fd !== null) native.closeFd(fd);
    const objects = [...new Set(names.map((n) => PROG_PINS[n].object))];
    for (const object of objects) {
      const opts = {
        pinRoot: pinDir,
        maxEntries: { [layout.pin.ctMap]: maxEntries },
        ...(object === 'ipvs_xdp.bpf.o' ? { rodata: { [layout.cfg.section]: cfgWord(cfg) } } : {}),
      };
      const { obj, file } = loadPreferred(objectDir, object, opts);
      loadedObjects.push(file);
      try {
        for (const n of names.filter((x) => PROG_PINS[x].object === object)) {
          const file = path.join(pinDir, PROG_PINS[n].pin);
          native.unpin(file);
          native.objPin(obj.programs[PROG_PINS[n].program], file);
        }
      } finally {
        native.closeObject(obj.id);
      }
    }
    fds = names.map((n) => openPin(path.join(pinDir, PROG_PINS[n].pin)));
  }
  const ctMap = openPin(path.join(pinDir, layout.pin.ctMap));
  const statsMap = openPin(path.join(pinDir, layout.pin.statsMap));
  if (ctMap === null || statsMap === null || fds.some((fd) => fd === null)) {
    throw new Error(`data path pins incomplete under ${pinDir}`);
  }
  checkMap(ctMap, {
    name: layout.pin.ctMap, type: BPF_MAP_TYPE_HASH, keySize: layout.key.size, valueSize: layout.value.size,
    maxEntries: cfg.maxEntries === undefined && reused ? undefined : maxEntries,
  });
  checkMap(statsMap, { name: layout.pin.statsMap, type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: layout.stats.length });
  const progs = Object.fromEntries(names.map((n, i) => [n, fds[i] as number])) as unknown as DatapathPrograms;
  let closed = false;
  return {
    pinDir, ctMap, statsMap, progs, reused, objects: loadedObjects,
    close(): void {
      if (closed) return;
      closed = true;
      for (const fd of [ctMap, statsMap, ...Object.values(progs)]) native.closeFd(fd);
    },
  };
}

/** Removes every pin (programs stay alive while attached; the map dies with its last user). */
export function removePins(pinDir: string = layout.pin.dir): void {
  for (const p of Object.values(PROG_PINS)) native.unpin(path.join(pinDir, p.pin));
  native.unpin(path.join(pinDir, layout.pin.ctMap));
  native.unpin(path.join(pinDir, layout.pin.statsMap));
}
