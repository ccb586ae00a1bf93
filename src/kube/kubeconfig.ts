/**
 * Where the apiserver is and how to authenticate to it: a kubeconfig file (current-context; the cluster's
 * server and certificate authority, the user's bearer token, token file or client certificate), or, with no
 * file, in-cluster (KUBERNETES_SERVICE_HOST/PORT and the pod's service account). Exec and auth-provider
 * plugins are refused with a clear message (ipvs-bpf runs none). Token files are re-read on every
 * connection, as bound service account tokens rotate.
 */
import { readFileSync } from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { SourceError } from '../sources/source';

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface Connection {
  /** https://host:port (or http:// in tests), no trailing slash. */
  server: string;
  /** PEM CA bundle ('' = the system's). */
  ca: string;
  insecureSkipTlsVerify: boolean;
  /** Client certificate and key (PEM), or ''. */
  cert: string;
  key: string;
  /** A fixed bearer token, or ''. */
  token: string;
  /** A file holding the bearer token (read at each connection), or ''. */
  tokenFile: string;
  /** SNI / certificate name override (tls-server-name), or ''. */
  serverName: string;
  /** Where it came from, for logs and errors. */
  origin: string;
}

export class KubeconfigError extends SourceError {
  override name = 'KubeconfigError';
}

interface Named<T> {
  name?: string;
  cluster?: T;
  user?: T;
  context?: T;
}

type Obj = Record<string, unknown>;

const str = (o: Obj | undefined, k: string): string => (o && typeof o[k] === 'string' ? (o[k] as string) : '');

/** The connection of a kubeconfig file's current context. Throws KubeconfigError naming the file and field. */
export function connectionFromKubeconfig(file: string, text?: string): Connection {
  let doc: unknown;
  try {
    doc = parse(text ?? readFileSync(file, 'utf8'));
  } catch (e) {
    throw new KubeconfigError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such kubeconfig file' : (e as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new KubeconfigError(`${file}: not a kubeconfig (no YAML mapping)`);
  const d = doc as Obj;
  const dir = path.dirname(file);
  const find = <T>(list: string, name: string): T | undefined => {
    const items = Array.isArray(d[list]) ? (d[list] as Named<T>[]) : [];
    const item = items.find((i) => i.name === name);
    const key = list.slice(0, -1) as 'cluster' | 'user' | 'context';
    return item?.[key];
  };
  const ctxName = str(d, 'current-context');
  if (!ctxName) throw new KubeconfigError(`${file}: current-context: not set`);
  const context = find<Obj>('contexts', ctxName);
  if (!context) throw new KubeconfigError(`${file}: current-context: no context named ${JSON.stringify(ctxName)}`);
  const cluster = find<Obj>('clusters', str(context, 'cluster'));
  if (!cluster) throw new KubeconfigError(`${file}: contexts[${ctxName}].cluster: no cluster named ${JSON.stringify(str(context, 'cluster'))}`);
  const user = find<Obj>('users', str(context, 'user')) ?? {};
  const server = str(cluster, 'server').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(server)) throw new KubeconfigError(`${file}: clusters[${str(context, 'cluster')}].server: ${JSON.stringify(server)} is not an https:// URL`);
  if (user.exec || user['auth-provider']) {
    throw new KubeconfigError(`${file}: users[${str(context, 'user')}]: exec and auth-provider credentials are not supported (use a token, token file or client certificate)`);
  }
  const fileOrData = (o: Obj, k: string): string => {
    const data = str(o, `${k}-data`);
    if (data) return Buffer.from(data, 'base64').toString('utf8');
    const f = str(o, k);
    if (!f) return '';
    const p = path.resolve(dir, f);
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      throw new KubeconfigError(`${file}: ${k}: ${p}: ${(e as Error).message}`);
    }
  };
  const tokenFile = str(user, 'tokenFile');
  return {
    server,
    ca: fileOrData(cluster, 'certificate-authority'),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    cert: fileOrData(user, 'client-certificate'),
    key: fileOrData(user, 'client-key'),
    token: str(user, 'token'),
    tokenFile: tokenFile ? path.resolve(dir, tokenFile) : '',
    serverName: str(cluster, 'tls-server-name'),
    origin: `kubeconfig ${file} (context ${ctxName})`,
  };
}

/** In-cluster: the service's address from the environment and the pod's service account. */
export function inClusterConnection(env: NodeJS.ProcessEnv = process.env, dir = IN_CLUSTER_DIR): Connection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeconfigError('kubernetes: no kubeconfig (kubernetes.kubeconfig, or clientConnection.kubeconfig of the KubeProxyConfiguration) and not in a pod (KUBERNETES_SERVICE_HOST/PORT unset)');
  }
  let ca: string;
  try {
    ca = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
  } catch (e) {
    throw new KubeconfigError(`kubernetes: in-cluster: ${path.join(dir, 'ca.crt')}: ${(e as Error).message}`);
  }
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${h}:${port}`, ca, insecureSkipTlsVerify: false, cert: '', key: '', token: '',
    tokenFile: path.join(dir, 'token'), serverName: '', origin: 'in-cluster service account',
  };
}

/** The bearer token to send now ('' for none). */
export function bearerToken(c: Connection): string {
  if (c.token) return c.token;
  if (!c.tokenFile) return '';
  try {
    return readFileSync(c.tokenFile, 'utf8').trim();
  } catch (e) {
    throw new KubeconfigError(`${c.origin}: token file ${c.tokenFile}: ${(e as Error).message}`);
  }
}
