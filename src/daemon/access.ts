/**
 * The daemon's own access check (behind the bus policy, so a looser policy cannot open it up): the access
 * level of the method (dbus-api.ts) against the caller's credentials as the bus reports them
 * (GetConnectionCredentials: UnixUserID, UnixGroupIDs).
 */
import { readFileSync } from 'fs';
import { FLOWS_GROUP, type Access } from './dbus-api';

export interface Caller {
  uid: number;
  /** The caller's groups as the bus saw them at connect; undefined when the bus did not say. */
  gids?: readonly number[];
}

export interface AccountFiles {
  group: string;
  passwd: string;
}

function readAccounts(): AccountFiles {
  const read = (f: string): string => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  return { group: read('/etc/group'), passwd: read('/etc/passwd') };
}

/** The gid of a group by name, from group(5) text. */
export function gidOf(name: string, groupText: string): number | undefined {
  for (const line of groupText.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** The groups of a uid from passwd(5) and group(5) text (primary and supplementary), as dbus-daemon resolves them. */
export function groupsOfUid(uid: number, files: AccountFiles): number[] {
  const entry = files.passwd.split('\n').map((l) => l.split(':')).find((f) => f[2] === String(uid));
  if (!entry) return [];
  const [user, , , primary] = entry;
  const out = primary && /^\d+$/.test(primary) ? [Number(primary)] : [];
  for (const line of files.group.split('\n')) {
    const [, , gid, members] = line.split(':');
    if (gid && /^\d+$/.test(gid) && (members ?? '').split(',').map((m) => m.trim()).includes(user!)) out.push(Number(gid));
  }
  return out;
}

/** Whether a caller may use a method of that access level. */
export function mayCall(access: Access, caller: Caller, files: AccountFiles = readAccounts()): boolean {
  if (access === 'read' || caller.uid === 0) return true;
  if (access === 'root') return false;
  const gid = gidOf(FLOWS_GROUP, files.group);
  if (gid === undefined) return false;
  return (caller.gids ?? groupsOfUid(caller.uid, files)).includes(gid);
}

/** What a refused caller is told. */
export function needs(access: Access): string {
  return access === 'flows' ? `root or membership in the group ${FLOWS_GROUP}` : 'root';
}
