import { constants } from 'os';
import { IpvsError, IpvsUnavailableError, ipvsErrorMessage, strerror } from '../../src/ipvs/errors';
import type { IpvsOp } from '../../src/ipvs/model';

const E = constants.errno;

describe('errno -> ipvsadm message', () => {
  test.each([
    ['add-service', E.EEXIST, 'Service already exists'],
    ['add-service', E.ENOENT, 'Scheduler or persistence engine not found'],
    ['edit-service', E.ENOENT, 'Scheduler or persistence engine not found'],
    ['edit-service', E.ESRCH, 'No such service'],
    ['delete-service', E.ESRCH, 'No such service'],
    ['zero', E.ESRCH, 'No such service'],
    ['add-dest', E.ESRCH, 'Service not defined'],
    ['add-dest', E.EEXIST, 'Destination already exists'],
    ['edit-dest', E.ENOENT, 'No such destination'],
    ['delete-dest', E.ENOENT, 'No such destination'],
    ['delete-dest', E.ESRCH, 'Service not defined'],
    ['start-daemon', E.EEXIST, 'Daemon has already run'],
    ['stop-daemon', E.ESRCH, 'No daemon is running'],
    ['get-dests', E.ESRCH, 'No such service'],
  ] as const)('%s errno %i: %s', (command, errno, message) => {
    expect(ipvsErrorMessage(command, errno)).toBe(message);
  });

  test('command-specific meanings do not leak into other commands', () => {
    // ENOENT means "no such destination" only for destination commands; for a service delete it is strerror.
    expect(ipvsErrorMessage('delete-service', E.ENOENT)).toBe('No such file or directory');
    expect(ipvsErrorMessage('add-service', E.ESRCH)).toBe('No such process');
    expect(ipvsErrorMessage('flush', E.EEXIST)).toBe('File exists');
  });

  test('meanings shared by every command', () => {
    expect(ipvsErrorMessage('flush', E.ENOMEM)).toBe('Memory allocation problem');
    expect(ipvsErrorMessage('add-dest', E.EINVAL)).toBe(
      'Invalid operation.  Possibly wrong module version, address not unicast, ...',
    );
    expect(ipvsErrorMessage('add-service', E.EAFNOSUPPORT)).toBe('Operation not supported with specified address family');
    expect(ipvsErrorMessage('get-info', E.EMSGSIZE)).toBe('Module is wrong version');
    for (const errno of [E.EPERM, E.EACCES]) {
      const m = ipvsErrorMessage('get-services', errno);
      expect(m).toMatch(/you must be root/);
      expect(m).toMatch(/CAP_NET_ADMIN/);
    }
  });

  test('anything else falls back to strerror', () => {
    expect(ipvsErrorMessage('add-dest', E.ERANGE)).toBe('Numerical result out of range');
    expect(ipvsErrorMessage('start-daemon', E.ENODEV)).toBe('No such device');
    expect(strerror(4095)).toBe('Unknown error 4095');
  });
});

describe('error classes', () => {
  test('IpvsError carries errno, code, command and op', () => {
    const op: IpvsOp = { op: 'delete-service', key: { kind: 'fwmark', family: 'inet', fwmark: 1 } };
    const e = new IpvsError('delete-service', E.ESRCH, op);
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe('No such service');
    expect(e.errno).toBe(E.ESRCH);
    expect(e.code).toBe('ESRCH');
    expect(e.op).toBe(op);
    expect(e.name).toBe('IpvsError');
  });

  test('IpvsUnavailableError says what to do', () => {
    const e = new IpvsUnavailableError();
    expect(e).toBeInstanceOf(IpvsError);
    expect(e.code).toBe('ENOENT');
    expect(e.message).toMatch(/no IPVS/);
    expect(e.message).toMatch(/modprobe ip_vs/);
    expect(e.message).toMatch(/lab VM/);
  });
});
