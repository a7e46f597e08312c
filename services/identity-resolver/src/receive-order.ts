// The order in which the resolver takes a chunk's events: the order they
// were received in, without ever reordering one partition.
//
// Why it matters: which of a person's events is resolved first decides
// between a merge and ids added (and so which identify's plan wins). The
// ingest keys raw events by userId, else anonymousId, so a login spreads one
// person over two partitions: an anonymous identify on one, the login's
// identify with both ids on the other. A chunk that combines partitions
// (coalescePartitions) must not put the login first because its partition
// came first; received_at (the ingest's clock when it accepted the call)
// says which came first, and for calls received in the same millisecond (one
// /v1/batch request holds both) the sender's timestamp does.

/**
 * Indices into `messages`: each partition's messages in the order given
 * (offset order), the partitions interleaved by received_at, then
 * timestamp, the earliest waiting message first (ties: the partition seen
 * first). A chunk of one partition keeps its order.
 */
export function receiveOrder(
  messages: ReadonlyArray<{ topic: string; partition: number; value: { received_at: number; timestamp: number } }>,
): number[] {
  const queues = new Map<string, number[]>();
  messages.forEach((m, i) => {
    const key = `${m.topic}:${m.partition}`;
    const queue = queues.get(key);
    if (queue) queue.push(i);
    else queues.set(key, [i]);
  });
  if (queues.size <= 1) return messages.map((_, i) => i);
  const lists = [...queues.values()];
  const heads = lists.map(() => 0);
  const order: number[] = [];
  while (order.length < messages.length) {
    let best = -1;
    let first: { received_at: number; timestamp: number } | null = null;
    for (let q = 0; q < lists.length; q++) {
      const list = lists[q]!;
      if (heads[q]! >= list.length) continue;
      const head = messages[list[heads[q]!]!]!.value;
      if (
        first === null ||
        head.received_at < first.received_at ||
        (head.received_at === first.received_at && head.timestamp < first.timestamp)
      ) {
        best = q;
        first = head;
      }
    }
    order.push(lists[best]![heads[best]!++]!);
  }
  return order;
}
