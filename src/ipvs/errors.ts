/**
 * Errors of IPVS commands, worded as ipvsadm words them. ipvsadm (libipvs) picks a message by the command
 * that failed and the errno: a few command-specific meanings first (ESRCH on a destination command means the
 * *service* is missing, ENOENT means the destination or the scheduler is missing), then meanings that hold for
 * every command, then the C library's text for the errno. The tables below follow that lookup order; the
 * wording of each message matches what ipvsadm prints so operators can search for it.
 */
import { constants as osConstants } from 'os';
import { getSystemErrorName } from 'util';
import type { IpvsOp } from './model';

/** Every command the netlink client issues: the write ops of IpvsOp, plus the reads. */
export type IpvsCommandName =
  | IpvsOp['op']
  | 'get-info'
  | 'get-services'
  | 'get-service'
  | 'get-dests'
  | 'get-timeouts'
  | 'get-daemons'
  | 'resolve-family';

const E = osConstants.errno;

/** errno meanings that depend on the command (libipvs's per-function entries). */
const BY_COMMAND: Partial<Record<IpvsCommandName, Readonly<Record<number, string>>>> = {
  'add-service': { [E.EEXIST]: 'Service already exists', [E.ENOENT]: 'Scheduler or persistence engine not found' },
  'edit-service': { [E.ESRCH]: 'No such service', [E.ENOENT]: 'Scheduler or persistence engine not found' },
  'delete-service': { [E.ESRCH]: 'No such service' },
  zero: { [E.ESRCH]: 'No such service' },
  'add-dest': { [E.ESRCH]: 'Service not defined', [E.EEXIST]: 'Destination already exists' },
  'edit-dest': { [E.ESRCH]: 'Service not defined', [E.ENOENT]: 'No such destination' },
  'delete-dest': { [E.ESRCH]: 'Service not defined', [E.ENOENT]: 'No such destination' },
  'start-daemon': { [E.EEXIST]: 'Daemon has already run' },
  'stop-daemon': { [E.ESRCH]: 'No daemon is running' },
  'get-services': { [E.ESRCH]: 'No such service' },
  'get-dests': { [E.ESRCH]: 'No such service' },
  'get-service': { [E.ESRCH]: 'No such service' },
};

const PERMISSION = 'Permission denied (you must be root): managing IPVS needs CAP_NET_ADMIN';

/** errno meanings for any command (libipvs's generic entries; EACCES added: the same remedy as EPERM). */
const ANY_COMMAND: Readonly<Record<number, string>> = {
  [E.EPERM]: PERMISSION,
  [E.EACCES]: PERMISSION,
  [E.EINVAL]: 'Invalid operation.  Possibly wrong module version, address not unicast, ...',
  [E.ENOPROTOOPT]: 'Protocol not available',
  [E.ENOMEM]: 'Memory allocation problem',
  [E.EOPNOTSUPP]: 'Operation not supported with IPv6',
  [E.EAFNOSUPPORT]: 'Operation not supported with specified address family',
  [E.EMSGSIZE]: 'Module is wrong version',
};

/** The C library's strerror() text for the errnos IPVS and netlink can return (glibc wording). */
const STRERROR: Readonly<Record<number, string>> = {
  [E.EPERM]: 'Operation not permitted',
  [E.ENOENT]: 'No such file or directory',
  [E.ESRCH]: 'No such process',
  [E.EINTR]: 'Interrupted system call',
  [E.EIO]: 'Input/output error',
  [E.E2BIG]: 'Argument list too long',
  [E.EBADF]: 'Bad file descriptor',
  [E.EAGAIN]: 'Resource temporarily unavailable',
  [E.ENOMEM]: 'Cannot allocate memory',
  [E.EACCES]: 'Permission denied',
  [E.EFAULT]: 'Bad address',
  [E.EBUSY]: 'Device or resource busy',
  [E.EEXIST]: 'File exists',
  [E.ENODEV]: 'No such device',
  [E.EINVAL]: 'Invalid argument',
  [E.ENOSPC]: 'No space left on device',
  [E.ERANGE]: 'Numerical result out of range',
  [E.EMSGSIZE]: 'Message too long',
  [E.EPROTO]: 'Protocol error',
  [E.ENOPROTOOPT]: 'Protocol not available',
  [E.EPROTONOSUPPORT]: 'Protocol not supported',
  [E.EOPNOTSUPP]: 'Operation not supported',
  [E.EAFNOSUPPORT]: 'Address family not supported by protocol',
  [E.EADDRINUSE]: 'Address already in use',
  [E.EADDRNOTAVAIL]: 'Cannot assign requested address',
  [E.ENETDOWN]: 'Network is down',
  [E.ENOBUFS]: 'No buffer space available',
  [E.ETIMEDOUT]: 'Connection timed out',
  [E.ECONNREFUSED]: 'Connection refused',
  [E.EALREADY]: 'Operation already in progress',
  [E.EINPROGRESS]: 'Operation now in progress',
  [E.ENOTSUP]: 'Operation not supported',
  [E.EOVERFLOW]: 'Value too large for defined data type',
};

/** strerror(errno) as the C library words it. */
export function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/** The symbolic name of a (positive) errno, e.g. "ESRCH"; "E<n>" when the platform has none. */
export function errnoCode(errno: number): string {
  try {
    const name = getSystemErrorName(-Math.abs(errno));
    return name.startsWith('Unknown') ? `E${errno}` : name;
  } catch {
    return `E${errno}`;
  }
}

/** What ipvsadm prints when `command` fails with `errno` (positive). */
export function ipvsErrorMessage(command: IpvsCommandName, errno: number): string {
  return BY_COMMAND[command]?.[errno] ?? ANY_COMMAND[errno] ?? strerror(errno);
}

export class IpvsError extends Error {
  override name = 'IpvsError';
  /** Positive errno, e.g. 3 for ESRCH. */
  readonly errno: number;
  /** Symbolic errno, e.g. "ESRCH". */
  readonly code: string;
  readonly command: IpvsCommandName;
  /** The write op that failed, when the failure belongs to one. */
  readonly op?: IpvsOp;

  constructor(command: IpvsCommandName, errno: number, op?: IpvsOp, message?: string) {
    super(message ?? ipvsErrorMessage(command, errno));
    this.errno = errno;
    this.code = errnoCode(errno);
    this.command = command;
    if (op) this.op = op;
  }
}

/** The kernel has no IPVS generic netlink family (CTRL_CMD_GETFAMILY "IPVS" answered ENOENT). */
export class IpvsUnavailableError extends IpvsError {
  override name = 'IpvsUnavailableError';

  constructor() {
    super(
      'resolve-family',
      E.ENOENT,
      undefined,
      'This kernel has no IPVS (the generic netlink family "IPVS" does not exist). Load it with ' +
        '`modprobe ip_vs`; if the module is not available on this machine, use the ipvs-bpf lab VM, ' +
        "whose Debian 6.1 kernel provides it.",
    );
  }
}

/** A reply the client could not make sense of (protocol violation, truncated message, lost socket). */
export class IpvsProtocolError extends IpvsError {
  override name = 'IpvsProtocolError';

  constructor(command: IpvsCommandName, detail: string, errno: number = E.EPROTO) {
    super(command, errno, undefined, `${ipvsErrorMessage(command, errno)}: ${detail}`);
  }
}
