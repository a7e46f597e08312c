// Errors in the shape of Segment's Public API:
// {"errors":[{"type":"...","message":"...","field":"..."}]} with a 4xx status.

export interface ApiErrorItem {
  type: string;
  message: string;
  field?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly items: ApiErrorItem[],
  ) {
    super(items.map((i) => i.message).join('; '));
    this.name = 'ApiError';
  }

  static badRequest(message: string, field?: string) {
    return new ApiError(400, [{ type: 'bad-request', message, field }]);
  }
  static validation(message: string, field?: string) {
    return new ApiError(422, [{ type: 'validation', message, field }]);
  }
  static notFound(what: string, id: string) {
    return new ApiError(404, [{ type: 'not-found', message: `${what} ${id} not found` }]);
  }
  static conflict(message: string, field?: string) {
    return new ApiError(409, [{ type: 'conflict', message, field }]);
  }
  static unauthorized() {
    return new ApiError(401, [{ type: 'unauthorized', message: 'missing or invalid bearer token' }]);
  }

  body() {
    return { errors: this.items.map((i) => (i.field ? i : { type: i.type, message: i.message })) };
  }
}
