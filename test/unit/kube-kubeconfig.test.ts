/** kubeconfig and in-cluster connections: what is read, relative paths, inline data, and refusals that name the field. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { bearerToken, connectionFromKubeconfig, inClusterConnection } from '../../src/kube/kubeconfig';

const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-bpf-kubeconfig-'));
const write = (name: string, text: string): string => {
  const p = path.join(dir, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
};

const KUBECONFIG = (user: string, cluster = 'server: https://127.0.0.1:6443/\n    certificate-authority: pki/ca.crt') => `apiVersion: v1
kind: Config
current-context: lab
contexts:
- name: other
  context: {cluster: nowhere, user: nobody}
- name: lab
  context: {cluster: lab, user: admin}
clusters:
- name: lab
  cluster:
    ${cluster}
users:
- name: admin
  user:
    ${user}
`;

describe('kubeconfig', () => {
  test('current context: server, CA file relative to the kubeconfig, token; client certificate inline', () => {
    write('pki/ca.crt', 'CA PEM');
    const c = connectionFromKubeconfig(write('a.conf', KUBECONFIG('token: secret')));
    expect(c).toEqual(expect.objectContaining({ server: 'https://127.0.0.1:6443', ca: 'CA PEM', token: 'secret', cert: '', origin: `kubeconfig ${dir}/a.conf (context lab)` }));
    expect(bearerToken(c)).toBe('secret');
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const d = connectionFromKubeconfig(write('b.conf', KUBECONFIG(`client-certificate-data: ${b64('CERT')}\n    client-key-data: ${b64('KEY')}`,
      `server: https://[::1]:6443\n    certificate-authority-data: ${b64('CA2')}\n    tls-server-name: kubernetes`)));
    expect([d.server, d.ca, d.cert, d.key, d.serverName]).toEqual(['https://[::1]:6443', 'CA2', 'CERT', 'KEY', 'kubernetes']);
  });

  test('a token file is read at each use (rotated tokens)', () => {
    const tf = write('token', 'one\n');
    const c = connectionFromKubeconfig(write('c.conf', KUBECONFIG('tokenFile: token')));
    expect(bearerToken(c)).toBe('one');
    writeFileSync(tf, 'two');
    expect(bearerToken(c)).toBe('two');
  });

  test('refusals name the file and the field', () => {
    expect(() => connectionFromKubeconfig(path.join(dir, 'none.conf'))).toThrow(`${dir}/none.conf: no such kubeconfig file`);
    expect(() => connectionFromKubeconfig(write('d.conf', KUBECONFIG('exec: {command: aws}')))).toThrow('users[admin]: exec and auth-provider credentials are not supported');
    expect(() => connectionFromKubeconfig(write('e.conf', KUBECONFIG('token: x', 'server: 127.0.0.1:6443')))).toThrow('clusters[lab].server: "127.0.0.1:6443" is not an https:// URL');
    expect(() => connectionFromKubeconfig(write('f.conf', KUBECONFIG('token: x').replace('current-context: lab', 'current-context: gone')))).toThrow('current-context: no context named "gone"');
    expect(() => connectionFromKubeconfig(write('g.conf', KUBECONFIG('token: x', 'server: https://h\n    certificate-authority: missing.crt')))).toThrow(`certificate-authority: ${dir}/missing.crt`);
  });

  test('in-cluster: the service address and the service account', () => {
    const sa = path.join(dir, 'sa');
    write('sa/ca.crt', 'SA CA');
    write('sa/token', 'satoken');
    const c = inClusterConnection({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa);
    expect([c.server, c.ca, bearerToken(c)]).toEqual(['https://[fd00::1]:443', 'SA CA', 'satoken']);
    expect(() => inClusterConnection({}, sa)).toThrow('not in a pod (KUBERNETES_SERVICE_HOST/PORT unset)');
  });
});
