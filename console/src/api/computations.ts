// Audiences and computed traits share their routes' shapes under two paths;
// these wrappers pick the path by kind so each call stays typed by the
// OpenAPI document (openapi-fetch types a literal path, not a union).
import { api, unwrap, type Schemas } from './client';
import type { paths } from './generated/schema';

export type Kind = 'audiences' | 'computed-traits';
type JsonBody<P extends keyof paths> = paths[P] extends { post: { requestBody?: { content: { 'application/json': infer B } } } }
  ? B
  : never;
type CreateBody = JsonBody<'/spaces/{spaceId}/audiences'>;
type ConnectBody = JsonBody<'/spaces/{spaceId}/audiences/{id}/destinations'>;
type PatchBody = paths['/spaces/{spaceId}/audiences/{id}'] extends { patch: { requestBody?: { content: { 'application/json': infer B } } } }
  ? B
  : never;

export const LABELS: Record<Kind, { title: string; one: string; create: string }> = {
  audiences: { title: 'Audiences', one: 'audience', create: '+ New audience' },
  'computed-traits': { title: 'Computed traits', one: 'computed trait', create: '+ New computed trait' },
};

const many = { 'pagination.count': '200' };

export async function listComputations(kind: Kind, spaceId: string): Promise<Schemas['Computation'][]> {
  const params = { path: { spaceId }, query: many };
  return kind === 'audiences'
    ? (await unwrap(api.GET('/spaces/{spaceId}/audiences', { params }))).data.audiences
    : (await unwrap(api.GET('/spaces/{spaceId}/computed-traits', { params }))).data.computedTraits;
}

export async function getComputation(kind: Kind, spaceId: string, id: string): Promise<Schemas['Computation']> {
  const params = { path: { spaceId, id } };
  return kind === 'audiences'
    ? (await unwrap(api.GET('/spaces/{spaceId}/audiences/{id}', { params }))).data.audience
    : (await unwrap(api.GET('/spaces/{spaceId}/computed-traits/{id}', { params }))).data.computedTrait;
}

export async function createComputation(kind: Kind, spaceId: string, body: CreateBody): Promise<Schemas['Computation']> {
  const params = { path: { spaceId } };
  return kind === 'audiences'
    ? (await unwrap(api.POST('/spaces/{spaceId}/audiences', { params, body }))).data.audience
    : (await unwrap(api.POST('/spaces/{spaceId}/computed-traits', { params, body }))).data.computedTrait;
}

export async function checkQuery(kind: Kind, spaceId: string, definition: { query: string; type: 'users' | 'accounts' }) {
  const params = { path: { spaceId } };
  return kind === 'audiences'
    ? (await unwrap(api.POST('/spaces/{spaceId}/audiences/check', { params, body: { definition } }))).data
    : (await unwrap(api.POST('/spaces/{spaceId}/computed-traits/check', { params, body: { definition } }))).data;
}

export async function listConnections(kind: Kind, spaceId: string, id: string): Promise<Schemas['Connection'][]> {
  const params = { path: { spaceId, id }, query: many };
  return kind === 'audiences'
    ? (await unwrap(api.GET('/spaces/{spaceId}/audiences/{id}/destinations', { params }))).data.connections
    : (await unwrap(api.GET('/spaces/{spaceId}/computed-traits/{id}/destinations', { params }))).data.connections;
}

export async function connect(kind: Kind, spaceId: string, id: string, body: ConnectBody): Promise<Schemas['Connection']> {
  const params = { path: { spaceId, id } };
  return kind === 'audiences'
    ? (await unwrap(api.POST('/spaces/{spaceId}/audiences/{id}/destinations', { params, body }))).data.connection
    : (await unwrap(api.POST('/spaces/{spaceId}/computed-traits/{id}/destinations', { params, body }))).data.connection;
}

export async function updateComputation(kind: Kind, spaceId: string, id: string, body: PatchBody): Promise<Schemas['Computation']> {
  const params = { path: { spaceId, id } };
  return kind === 'audiences'
    ? (await unwrap(api.PATCH('/spaces/{spaceId}/audiences/{id}', { params, body }))).data.audience
    : (await unwrap(api.PATCH('/spaces/{spaceId}/computed-traits/{id}', { params, body }))).data.computedTrait;
}
