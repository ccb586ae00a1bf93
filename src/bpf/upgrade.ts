/**
 * In-place upgrade of pinned programs: is the pinned program the one the object on disk would load, and
 * if not, the swap of its pin. The attachments follow in src/bpf/attach.ts (they converge on the pinned
 * program); the maps are never touched here (the fresh programs were loaded against the pinned maps).
 */
import * as fs from 'fs';
import { isNativeError, native, ProgInfo } from './native';

/** A program as the kernel identifies it: id, and tag (its hash of the instructions, map references zeroed). */
export interface ProgIdentity { id: number; tag: string }

export interface ProgramChange {
  /** Program name in the object (e.g. ipvs_tc_snat). */
  program: string;
  /** Pin file. */
  pin: string;
  /** loaded: there was no pin; kept: the pinned program is current; replaced: the pin now holds the new one. */
  action: 'loaded' | 'kept' | 'replaced';
  /** Why it was replaced: the code (tag), the pinned maps it uses, or its read-only data (load-time settings). */
  reason?: string;
  old?: ProgIdentity;
  /** The program the pin holds now. */
  current: ProgIdentity;
}

const BPF_MAP_TYPE_ARRAY = 2;
const BPF_F_RDONLY_PROG = 1 << 7;

/** Suffix the pin of a replacement carries until it is renamed over the old pin (bpffs refuses names with a dot). */
export const PIN_TEMP_SUFFIX = '__new';

function identity(i: ProgInfo): ProgIdentity {
  return { id: i.id, tag: i.tag };
}

/**
 * The program's read-only data maps (.rodata*, .kconfig), by section name: the load-time settings.
 * undefined when they cannot be opened: by id needs CAP_SYS_ADMIN, which the systemd unit does not grant.
 */
function readOnlyData(info: ProgInfo): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const id of info.mapIds) {
    let fd: number;
    try {
      fd = native.mapGetFdById(id);
    } catch (e) {
      if (isNativeError(e) && e.code === 'EPERM') return undefined;
      continue; // gone meanwhile: nothing to compare
    }
    try {
      const mi = native.mapInfo(fd);
      if (mi.type !== BPF_MAP_TYPE_ARRAY || !(mi.flags & BPF_F_RDONLY_PROG) || mi.maxEntries !== 1) continue;
      const dot = mi.name.indexOf('.');
      // libbpf names them <object prefix><section>: the section identifies them across builds
      const section = dot >= 0 ? mi.name.slice(dot) : mi.name;
      out.set(section, native.mapLookup(fd, Buffer.alloc(4))?.toString('hex') ?? '');
    } finally {
      native.closeFd(fd);
    }
  }
  return out;
}

/**
 * Why the pinned program (oldFd) is not the freshly loaded one (newFd), or undefined when it is: same tag,
 * it uses the pinned maps the new one uses (pinnedMapIds: ids of the maps shared by pin), and the same
 * read-only data (the tag does not cover it: settings written into .rodata before load; compared where
 * the maps can be opened, i.e. with CAP_SYS_ADMIN: the daemon sets none of them, the tools and tests do).
 */
export function differs(oldFd: number, newFd: number, pinnedMapIds: Set<number>): string | undefined {
  const o = native.progInfo(oldFd);
  const n = native.progInfo(newFd);
  if (o.tag !== n.tag) return 'code';
  const missing = n.mapIds.filter((id) => pinnedMapIds.has(id) && !o.mapIds.includes(id));
  if (missing.length) return `maps (does not use pinned map ${missing.join(', ')})`;
  const ro = readOnlyData(o);
  const rn = ro && readOnlyData(n);
  for (const [section, value] of rn ?? []) {
    if (ro?.get(section) !== value) return `settings (${section})`;
  }
  return undefined;
}

/**
 * Puts the program newFd in the pin file, replacing what it held: pinned under a temporary name first,
 * then renamed over the old pin. rename(2) on bpffs swaps the directory entry atomically, so whoever opens
 * the pin (a daemon start, --teardown, bpftool) finds the old program or the new one, never none; the old
 * program lives on while an interface still runs it (the attachment holds it) and goes with its last one.
 * A crash before the rename leaves only the temporary pin, removed by the next start (removeTempPins).
 */
export function swapPin(newFd: number, file: string): void {
  const tmp = file + PIN_TEMP_SUFFIX;
  native.unpin(tmp);
  native.objPin(newFd, tmp);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    native.unpin(tmp);
    throw e;
  }
}

/** Removes what an interrupted swapPin left in the pin directory. */
export function removeTempPins(pinDir: string): void {
  for (const f of fs.readdirSync(pinDir)) if (f.endsWith(PIN_TEMP_SUFFIX)) native.unpin(`${pinDir}/${f}`);
}

export function progIdentity(fd: number): ProgIdentity {
  return identity(native.progInfo(fd));
}
