// What another service may reuse of how this one sends (the control plane's
// event tester): the throttled attempt, the shared rate limiter, the Actions
// runtime and the list adapters, the same modules the dispatcher runs.
export { DeliveryService, type AttemptResult, type DeliveryResult, type HttpRequest, type OutboundRequest } from './delivery.service';
export { RateLimiter } from './rate-limiter';
export { ActionsRuntime } from './adapters/actions.runtime';
export { listAdapters } from './adapters/list-adapters';
export { ListRequestError } from './adapters/list-adapter-error';
