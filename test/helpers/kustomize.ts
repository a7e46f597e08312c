// Renders a kustomize directory without kubectl: resources (files and
// directories) and strategic-merge patches by kind and name, which is all
// deploy/k8s uses. Anything else in a kustomization.yaml is refused, so the
// manifests cannot grow a feature this renderer would silently ignore.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'patches']);

/**
 * Lists merged item by item on their `name`, as Kubernetes' strategic merge
 * does for these fields; every other list is replaced by the patch's.
 * NOTE: deploy/k8s patches no other list (ports merge on containerPort in
 * Kubernetes; CRDs such as ScaledObject replace every list).
 */
const MERGED_BY_NAME = new Set(['containers', 'initContainers', 'env', 'volumes', 'volumeMounts']);

export function readYamlDocuments(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS();
  });
}

export function renderKustomization(dir: string): K8sObject[] {
  const file = path.join(dir, 'kustomization.yaml');
  const kustomization = parse(readFileSync(file, 'utf8')) as { resources?: string[]; patches?: Array<{ path?: string; patch?: string }> };
  const unsupported = Object.keys(kustomization).filter((k) => !KUSTOMIZATION_FIELDS.has(k));
  if (unsupported.length > 0) throw new Error(`${file}: fields this renderer does not apply: ${unsupported.join(', ')}`);

  const objects: K8sObject[] = [];
  for (const resource of kustomization.resources ?? []) {
    const target = path.resolve(dir, resource);
    const rendered = statSync(target).isDirectory() ? renderKustomization(target) : (readYamlDocuments(target) as K8sObject[]);
    for (const object of rendered) {
      if (objects.some((o) => sameObject(o, object))) throw new Error(`${file}: ${object.kind} ${object.metadata.name} is defined twice`);
      objects.push(object);
    }
  }
  for (const entry of kustomization.patches ?? []) {
    const keys = Object.keys(entry);
    if (keys.length !== 1 || !(entry.path ?? entry.patch))
      throw new Error(`${file}: a patch is a path or an inline patch, nothing else (${keys.join(', ')})`);
    const patches = (entry.path ? readYamlDocuments(path.resolve(dir, entry.path)) : [parse(entry.patch!)]) as K8sObject[];
    for (const patch of patches) {
      const index = objects.findIndex((o) => sameObject(o, patch));
      if (index < 0) throw new Error(`${file}: patch of ${patch.kind} ${patch.metadata?.name}, which no resource defines`);
      objects[index] = strategicMerge(objects[index], patch) as K8sObject;
    }
  }
  return objects;
}

const sameObject = (a: K8sObject, b: K8sObject) => a.kind === b.kind && a.metadata?.name === b.metadata?.name;

function strategicMerge(base: unknown, patch: unknown, field?: string): unknown {
  if (isMap(base) && isMap(patch)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete out[key];
      else out[key] = strategicMerge(base[key], value, key);
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch) && field !== undefined && MERGED_BY_NAME.has(field)) {
    const out = [...base] as Array<{ name?: string }>;
    for (const item of patch as Array<{ name?: string }>) {
      const index = out.findIndex((o) => o.name === item.name);
      if (index < 0) out.push(item);
      else out[index] = strategicMerge(out[index], item) as { name?: string };
    }
    return out;
  }
  return patch;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
