/**
 * Loads the data path, or re-opens it: maps and programs are pinned under the pin directory
 * (default /sys/fs/bpf/ipvs-bpf), so a restarted daemon gets the very same maps (live flows) and
 * programs (still attached) back.
 *
 * Every open loads the objects on disk against the pinned maps (reused by fd, after checking that each
 * is the map the object defines: a difference is an ABI change and is refused, never recreated). A
 * pinned program that is not what the object would load (another tag, other pinned maps, other
 * load-time settings) has its pin swapped for the fresh one (src/bpf/upgrade.ts); attaching then
 * replaces it in place on every interface (src/bpf/attach.ts). A current pinned program is kept and the
 * fresh copy dropped, so a plain restart changes nothing.
 */
import * as fs from 'fs';
import * as path from 'path';
import { layout } from './abi';
import { bpfObjectDir, isMapMismatch, LoadedObject, LoadOptions, native } from './native';
import { differs, progIdentity, ProgramChange, removeTempPins, swapPin } from './upgrade';

export type { ProgramChange } from './upgrade';

export interface DatapathConfig {
  /** bpffs directory for pins; default from the ABI header. */
  pinDir?: string;
  /** Conntrack map capacity (entries; a connection uses three). Fixed once the map is pinned. */
  maxEntries?: number;
  /** XDP fast path decrements TTL / hop limit (default true). */
  decrementTtl?: boolean;
  /** Replace the pinned programs even if they are current (maps are still reused). */
  reloadPrograms?: boolean;
  /** Where the compiled objects are; default build/bpf. */
  objectDir?: string;
}

export interface DatapathPrograms { xdp: number; xdpPass: number; tcEgress: number; tcIngress: number }

export interface Datapath {
  pinDir: string;
  ctMap: number;
  statsMap: number;
  /** Devices the XDP fast path may redirect to (src/bpf/devmap.ts). */
  devMap: number;
  progs: DatapathPrograms;
  /** true if every pinned program was current (nothing loaded, nothing replaced). */
  reused: boolean;
  /** Object files loaded (and compared with the pins). */
  objects: string[];
  /** What happened to each program's pin. */
  changes: ProgramChange[];
  /**
   * The programs the pins held before this open replaced them, open until releasePrevious() or close():
   * attach names them as the expected old program (XDP_FLAGS_REPLACE) without needing CAP_SYS_ADMIN to
   * open them by id.
   */
  previous: { id: number; fd: number }[];
  /** Closes the previous programs once attached everywhere (each goes with its last attachment). */
  releasePrevious(): void;
  close(): void;
}

const BPF_MAP_TYPE_HASH = 1;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_MAP_TYPE_DEVMAP_HASH = 25;

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

/** The loader's refusal of a pinned map the objects do not define the same way, with what to do. */
function refusal(pinDir: string, file: string, e: { map: string; differences: string[] }, configured?: number): Error {
  const capacityOnly = e.map === layout.pin.ctMap && e.differences.every((d) => d.startsWith('max entries'));
  if (capacityOnly) {
    const pinned = /^max entries (\d+)/.exec(e.differences[0] ?? '')?.[1];
    return new Error(`pinned map ${e.map} in ${pinDir} has capacity ${pinned} (configured ${configured}); the capacity is fixed once `
      + `the map is pinned: configure ${pinned}, or run \`ipvs-bpf --teardown\` to resize (drops every established flow)`);
  }
  return new Error(`refusing to load ${file} over the pinned maps in ${pinDir}: map ${e.map} differs from its definition `
    + `(${e.differences.join(', ')}): an ABI change. Nothing was replaced; the running programs and flows are as they were. `
    + 'To switch, run `ipvs-bpf --teardown` (drops every established flow) and start again');
}

/** Ids of the maps shared by pin (the ones a current program must use). */
function pinnedMapIds(pinDir: string): Set<number> {
  const ids = new Set<number>();
  for (const name of [layout.pin.ctMap, layout.pin.statsMap, layout.pin.devMap]) {
    const fd = openPin(path.join(pinDir, name));
    if (fd === null) continue;
    try {
      ids.add(native.mapInfo(fd).id);
    } finally {
      native.closeFd(fd);
    }
  }
  return ids;
}

export function openDatapath(cfg: DatapathConfig = {}): Datapath {
  const pinDir = cfg.pinDir ?? layout.pin.dir;
  const objectDir = cfg.objectDir ?? bpfObjectDir;
  native.ensureBpffs(pinDir);
  removeTempPins(pinDir);

  const ctPin = path.join(pinDir, layout.pin.ctMap);
  const ctFd = openPin(ctPin);
  let pinnedCapacity: number | undefined;
  if (ctFd !== null) {
    pinnedCapacity = native.mapInfo(ctFd).maxEntries;
    native.closeFd(ctFd);
  }
  // Without a configured capacity an existing map is taken as it is.
  const maxEntries = cfg.maxEntries ?? pinnedCapacity ?? layout.defaultEntries;

  const names = Object.keys(PROG_PINS) as (keyof DatapathPrograms)[];
  const old = names.map((n) => openPin(path.join(pinDir, PROG_PINS[n].pin)));
  const loaded: { object: string; file: string; obj: LoadedObject }[] = [];
  const changes: ProgramChange[] = [];
  const previous: { id: number; fd: number }[] = [];
  let done = false;
  try {
    if (ctFd === null && old.some((fd) => fd !== null)) {
      throw new Error(`${pinDir}: programs are pinned but the conntrack map ${layout.pin.ctMap} is not (removed by hand?); `
        + 'loading would give them an empty map. Run `ipvs-bpf --teardown` and start again');
    }
    // 1. Every object loads against the pinned maps before any pin changes: a refusal leaves all as it was.
    for (const object of [...new Set(names.map((n) => PROG_PINS[n].object))]) {
      const opts = {
        pinRoot: pinDir,
        maxEntries: { [layout.pin.ctMap]: maxEntries },
        ...(object === 'ipvs_xdp.bpf.o' ? { rodata: { [layout.cfg.section]: cfgWord(cfg) } } : {}),
      };
      try {
        loaded.push({ object, ...loadPreferred(objectDir, object, opts) });
      } catch (e) {
        if (isMapMismatch(e)) throw refusal(pinDir, path.join(objectDir, object), e, maxEntries);
        throw e;
      }
    }
    // 2. Per program: keep the pinned one if current, else swap the pin.
    const shared = pinnedMapIds(pinDir);
    names.forEach((n, i) => {
      const { pin, object, program } = PROG_PINS[n];
      const file = path.join(pinDir, pin);
      const fresh = loaded.find((l) => l.object === object)?.obj.programs[program];
      if (fresh === undefined) throw new Error(`${object}: no program ${program}`);
      const oldFd = old[i];
      if (oldFd === null || oldFd === undefined) {
        native.unpin(file);
        native.objPin(fresh, file);
        changes.push({ program, pin, action: 'loaded', current: progIdentity(fresh) });
        return;
      }
      const why = cfg.reloadPrograms ? 'reload requested' : differs(oldFd, fresh, shared);
      if (why === undefined) {
        changes.push({ program, pin, action: 'kept', current: progIdentity(oldFd) });
        return;
      }
      swapPin(fresh, file);
      const was = progIdentity(oldFd);
      changes.push({ program, pin, action: 'replaced', reason: why, old: was, current: progIdentity(fresh) });
      previous.push({ id: was.id, fd: oldFd });
    });
    done = true;
  } finally {
    // the replaced ones stay open for the attach step (Datapath.previous), unless this open failed
    for (const fd of old) if (fd !== null && (!done || !previous.some((p) => p.fd === fd))) native.closeFd(fd);
    for (const l of loaded) native.closeObject(l.obj.id);
  }

  const fds = names.map((n) => openPin(path.join(pinDir, PROG_PINS[n].pin)));
  const ctMap = openPin(ctPin);
  const statsMap = openPin(path.join(pinDir, layout.pin.statsMap));
  const devMap = openPin(path.join(pinDir, layout.pin.devMap));
  const all = [ctMap, statsMap, devMap, ...fds];
  const releasePrevious = (): void => {
    for (const p of previous.splice(0)) native.closeFd(p.fd);
  };
  if (all.some((fd) => fd === null)) {
    for (const fd of all) if (fd !== null) native.closeFd(fd);
    releasePrevious();
    throw new Error(`data path pins incomplete under ${pinDir}`);
  }
  try {
    checkMap(ctMap as number, { name: layout.pin.ctMap, type: BPF_MAP_TYPE_HASH, keySize: layout.key.size, valueSize: layout.value.size, maxEntries });
    checkMap(statsMap as number, { name: layout.pin.statsMap, type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: layout.statsSlots });
    checkMap(devMap as number, { name: layout.pin.devMap, type: BPF_MAP_TYPE_DEVMAP_HASH, keySize: 4, valueSize: 4, maxEntries: layout.devMapEntries });
  } catch (e) {
    for (const fd of all) native.closeFd(fd as number);
    releasePrevious();
    throw e;
  }
  const progs = Object.fromEntries(names.map((n, i) => [n, fds[i] as number])) as unknown as DatapathPrograms;
  let closed = false;
  return {
    pinDir, ctMap: ctMap as number, statsMap: statsMap as number, devMap: devMap as number, progs,
    reused: changes.every((c) => c.action === 'kept'),
    objects: loaded.map((l) => l.file),
    changes,
    previous,
    releasePrevious,
    close(): void {
      if (closed) return;
      closed = true;
      for (const fd of all) native.closeFd(fd as number);
      releasePrevious();
    },
  };
}

/** Removes every pin (programs stay alive while attached; the map dies with its last user). */
export function removePins(pinDir: string = layout.pin.dir): void {
  for (const p of Object.values(PROG_PINS)) native.unpin(path.join(pinDir, p.pin));
  for (const m of [layout.pin.ctMap, layout.pin.statsMap, layout.pin.devMap]) native.unpin(path.join(pinDir, m));
}
