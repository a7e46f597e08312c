import type { Request } from 'express';

/** A path parameter as a string (express 5 types them loosely for computed paths). */
export function param(req: Request, name: string): string {
  const v = (req.params as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v.join('/') : (v ?? '');
}
