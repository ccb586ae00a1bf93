/**
 * The parts of the Kubernetes API objects the kubernetes source reads (core/v1 Service and Node,
 * discovery.k8s.io/v1 EndpointSlice), as the apiserver serves them in JSON. Only the fields used are
 * declared; everything is optional the way the API leaves it optional. Names follow the API.
 */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

export type K8sProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface ServicePort {
  name?: string;
  protocol?: K8sProtocol;
  port: number;
  nodePort?: number;
}

export interface Service {
  metadata: ObjectMeta;
  spec: {
    type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
    clusterIP?: string;
    clusterIPs?: string[];
    ipFamilies?: ('IPv4' | 'IPv6')[];
    ports?: ServicePort[];
    externalIPs?: string[];
    sessionAffinity?: 'None' | 'ClientIP';
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    externalTrafficPolicy?: 'Cluster' | 'Local';
    internalTrafficPolicy?: 'Cluster' | 'Local';
    healthCheckNodePort?: number;
    loadBalancerSourceRanges?: string[];
    trafficDistribution?: string;
  };
  status?: {
    loadBalancer?: { ingress?: { ip?: string; hostname?: string; ipMode?: 'VIP' | 'Proxy' }[] };
  };
}

export interface Endpoint {
  addresses: string[];
  conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
  nodeName?: string;
  zone?: string;
  hints?: { forZones?: { name: string }[]; forNodes?: { name: string }[] };
}

export interface EndpointSlice {
  metadata: ObjectMeta;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints?: Endpoint[] | null;
  ports?: { name?: string | null; protocol?: K8sProtocol | null; port?: number | null }[] | null;
}

export interface Node {
  metadata: ObjectMeta;
  spec?: { taints?: { key: string; effect: string }[] };
  status?: { addresses?: { type: string; address: string }[] };
}

/** Labels kube-proxy selects on (Services and EndpointSlices alike). */
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
/** The label an EndpointSlice names its Service with. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
