/**
 * Certificates and keys for the test control plane, made with openssl: a CA, the apiserver's serving
 * certificate (for loopback, the address the lab VM reaches it at, the kubernetes Service's ClusterIP and
 * names), etcd's nothing (plain HTTP on loopback), and the service-account signing key pair the apiserver
 * requires. ECDSA P-256 everywhere: fast to make, accepted by kube-apiserver for serving and service-account
 * tokens (ES256).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  saPublicKey: string;
  saPrivateKey: string;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (e, _stdout, stderr) => {
      if (e) reject(new Error(`openssl ${args[0]} failed: ${(stderr || e.message).trim()}`));
      else resolve();
    });
  });
}

/** Writes the PKI into dir (created). sans: the serving certificate's subjectAltNames, e.g. IP:127.0.0.1. */
export async function makePki(dir: string, sans: string[]): Promise<Pki> {
  await fs.mkdir(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=ipvs-bpf-test-ca'], dir);
  await fs.writeFile(path.join(dir, 'server.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${sans.join(',')}`,
    '',
  ].join('\n'));
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver'], dir);
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '30', '-extfile', 'server.ext'], dir);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'sa.key'], dir);
  await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  const p = (f: string): string => path.join(dir, f);
  return { dir, caCert: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), saPublicKey: p('sa.pub'), saPrivateKey: p('sa.key') };
}
