/**
 * KeepalivedSource: the table follows real checks against a loopback listener, a verdict names only its
 * virtual server's services, a reload keeps a failed real server out, bad files are refused naming file
 * and line with the old state kept, and two files defining one service conflict.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { serviceKeyId, type ServiceKey } from '../../src/ipvs/model';
import { KeepalivedSource, readKeepalivedConfigs } from '../../src/sources/keepalived';
import { SourceError } from '../../src/sources/source';

jest.setTimeout(20000);

const dir = mkdtempSync(path.join(tmpdir(), 'kasrc-'));
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

function conf(port: number, extra = ''): string {
  return `virtual_server 10.0.0.1 80 {
  protocol TCP
  lb_algo rr
  delay_loop 0.2
  real_server 127.0.0.1 ${port} {
    TCP_CHECK {
      connect_timeout 0.2
      warmup 0
    }
  }
}
virtual_server 10.0.0.2 80 {
  protocol TCP
  real_server 127.0.0.1 1 {
  }
}
${extra}`;
}

const dests = (s: KeepalivedSource, id: string): string[] =>
  (s.current().services.get(id)?.destinations ?? []).map((d) => `${d.address}:${d.port}/${d.weight}`);

async function until(pred: () => boolean, maxMs = 4000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > maxMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('KeepalivedSource', () => {
  it('follows the checks, names the changed services, keeps health over a reload, refuses bad files', async () => {
    const srv = net.createServer((c) => c.destroy());
    const port = await new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)));
    const file = write('k.conf', conf(port));
    const logs: string[] = [];
    const verdicts: string[] = [];
    const health = {
      transition: (t: { service: ServiceKey; server: { address: string; port: number }; checker: string; up: boolean }) =>
        verdicts.push(`${serviceKeyId(t.service)} ${t.server.address}:${t.server.port} ${t.checker} ${t.up ? 'up' : 'down'}`),
      forget: () => undefined,
    };
    const src = new KeepalivedSource([file], { log: (l, m) => logs.push(`${l} ${m}`), health });
    const t = await src.read();
    expect([...t.services.keys()]).toEqual(['tcp 10.0.0.1:80', 'tcp 10.0.0.2:80']);
    expect(dests(src, 'tcp 10.0.0.1:80')).toEqual([`127.0.0.1:${port}/1`]);
    const changes: string[][] = [];
    src.subscribe((keys?: readonly ServiceKey[]) => changes.push((keys ?? []).map(serviceKeyId)));
    await until(() => verdicts.length >= 1); // the first check passed (1 s after the start)
    await new Promise<void>((r) => srv.close(() => r()));
    await until(() => dests(src, 'tcp 10.0.0.1:80').length === 0);
    expect(changes.at(-1)).toEqual(['tcp 10.0.0.1:80']);
    expect(logs).toContainEqual(`notice keepalived: real server 127.0.0.1:${port} of 10.0.0.1:80 removed from the pool`);
    // The metrics reporter saw the first verdict (up) and the transition (down).
    expect(verdicts).toEqual([`tcp 10.0.0.1:80 127.0.0.1:${port} TCP_CHECK up`, `tcp 10.0.0.1:80 127.0.0.1:${port} TCP_CHECK down`]);

    // A reload (same real server, one more virtual server) does not put the failed real server back.
    write('k.conf', conf(port, 'virtual_server 10.0.0.3 80 {\n  protocol TCP\n  real_server 127.0.0.1 2 {\n  }\n}\n'));
    const t2 = await src.read();
    expect([...t2.services.keys()]).toEqual(['tcp 10.0.0.1:80', 'tcp 10.0.0.2:80', 'tcp 10.0.0.3:80']);
    expect(dests(src, 'tcp 10.0.0.1:80')).toEqual([]);

    // A bad file is refused with file:line: keyword; the running state stays.
    write('k.conf', conf(port).replace('lb_algo rr', 'lb_algo nope'));
    await expect(src.read()).rejects.toThrow(new RegExp(`^${file.replace(/[.]/g, '\\.')}:3: lb_algo: unknown scheduler "nope"`));
    expect([...src.current().services.keys()]).toHaveLength(3);

    // The listener comes back: so does the real server.
    const srv2 = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => srv2.listen(port, '127.0.0.1', () => r()));
    await until(() => dests(src, 'tcp 10.0.0.1:80').length === 1);
    expect(src.health().find((h) => h.vs === '10.0.0.1:80')).toMatchObject({ alive: true, inTable: true, weight: 1 });
    src.close();
    srv2.close();
  });

  it('refuses two files that define the same service, naming both', () => {
    const a = write('a.conf', 'virtual_server 10.0.0.9 80 {\nprotocol TCP\nreal_server 10.0.1.1 80 {\n}\n}\n');
    const b = write('b.conf', '\n\nvirtual_server 10.0.0.9 80 {\nprotocol TCP\nreal_server 10.0.1.2 80 {\n}\n}\n');
    expect(() => readKeepalivedConfigs([a, b])).toThrow(SourceError);
    expect(() => readKeepalivedConfigs([a, b])).toThrow(`${b}:3: virtual_server: 10.0.0.9:80 is also defined at ${a}:1`);
  });
});
