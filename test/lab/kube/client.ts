/**
 * A small Kubernetes API client for tests: bearer token, the test CA, JSON. It writes the objects a cluster
 * state is made of (Namespaces, Services, EndpointSlices, Nodes) and reads them back; nothing a daemon needs
 * (no watch). Errors name the object and carry the apiserver's Status message.
 */
import * as https from 'node:https';

/** The part of an object every kind here has. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  status?: unknown;
  [k: string]: unknown;
}

export interface ApiTarget {
  /** https://host:port */
  server: string;
  token: string;
  /** PEM of the CA that signed the serving certificate. */
  ca: string;
}

/** Collection paths of the kinds tests write (namespaced kinds use the object's namespace, default "default"). */
const RESOURCES: Record<string, { group: string; plural: string; namespaced: boolean }> = {
  'v1/Namespace': { group: '/api/v1', plural: 'namespaces', namespaced: false },
  'v1/Node': { group: '/api/v1', plural: 'nodes', namespaced: false },
  'v1/Service': { group: '/api/v1', plural: 'services', namespaced: true },
  'v1/Endpoints': { group: '/api/v1', plural: 'endpoints', namespaced: true },
  'discovery.k8s.io/v1/EndpointSlice': { group: '/apis/discovery.k8s.io/v1', plural: 'endpointslices', namespaced: true },
};

export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly reason?: string) {
    super(message);
  }
}

export function describeObject(o: KubeObject): string {
  return `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

export class KubeClient {
  private readonly agent: https.Agent;

  constructor(readonly target: ApiTarget) {
    this.agent = new https.Agent({ ca: target.ca, keepAlive: true, maxSockets: 4 });
  }

  close(): void {
    this.agent.destroy();
  }

  /** The collection path of o's kind (and namespace). */
  static collectionPath(o: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
    const r = RESOURCES[`${o.apiVersion}/${o.kind}`];
    if (!r) throw new Error(`kube client: no resource for apiVersion ${o.apiVersion} kind ${o.kind} (${Object.keys(RESOURCES).join(', ')})`);
    return r.namespaced ? `${r.group}/namespaces/${o.metadata.namespace ?? 'default'}/${r.plural}` : `${r.group}/${r.plural}`;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.target.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = https.request(url, {
        method, agent: this.agent, timeout: 30_000,
        headers: {
          authorization: `Bearer ${this.target.token}`, accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // plain text (e.g. /readyz)
          }
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
            return;
          }
          const st = (parsed && typeof parsed === 'object' ? parsed : {}) as { message?: string; reason?: string };
          reject(new ApiError(`${method} ${path}: HTTP ${status}${st.message ? `: ${st.message}` : text ? `: ${text.slice(0, 300)}` : ''}`, status, st.reason));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Creates o; when o has a status (a Service's load-balancer ingress, a Node's addresses), writes it too
   * through the status subresource, which a create ignores for Services. Returns the stored object. */
  async create(o: KubeObject): Promise<KubeObject> {
    const base = KubeClient.collectionPath(o);
    let stored: KubeObject;
    try {
      stored = await this.request<KubeObject>('POST', base, o);
    } catch (e) {
      throw new Error(`creating ${describeObject(o)}: ${(e as Error).message}`);
    }
    if (o.status !== undefined && (o.kind === 'Service' || o.kind === 'Node')) {
      try {
        stored = await this.request<KubeObject>('PUT', `${base}/${o.metadata.name}/status`, { ...stored, status: o.status });
      } catch (e) {
        throw new Error(`writing the status of ${describeObject(o)}: ${(e as Error).message}`);
      }
    }
    return stored;
  }

  async get(o: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): Promise<KubeObject> {
    return this.request<KubeObject>('GET', `${KubeClient.collectionPath(o)}/${o.metadata.name}`);
  }

  async delete(o: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): Promise<void> {
    await this.request('DELETE', `${KubeClient.collectionPath(o)}/${o.metadata.name}`);
  }

  /** Creates the objects in order (Namespaces and Nodes are sorted first). */
  async createAll(objects: KubeObject[]): Promise<KubeObject[]> {
    const rank = (o: KubeObject): number => (o.kind === 'Namespace' ? 0 : o.kind === 'Node' ? 1 : o.kind === 'Service' ? 2 : 3);
    const ordered = [...objects].sort((a, b) => rank(a) - rank(b));
    const out: KubeObject[] = [];
    for (const o of ordered) out.push(await this.create(o));
    return out;
  }
}
