// What another service may reuse of how this one sends (the control plane's
// event tester): the throttled attempt, the shared rate limiter and the
// Actions runtime, the same modules the dispatcher runs.
export { DeliveryService, type AttemptResult, type HttpRequest, type OutboundRequest } from './delivery.service';
export { RateLimiter } from './rate-limiter';
export { ActionsRuntime } from './adapters/actions.runtime';
