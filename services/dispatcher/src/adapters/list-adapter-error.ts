// A whole add/remove request that failed: retriable means the retry window
// was spent (the items go to the DLQ); not retriable means the destination
// refused the request (the flush bisects it to find the bad items).
export class ListRequestError extends Error {
  constructor(
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }
}
