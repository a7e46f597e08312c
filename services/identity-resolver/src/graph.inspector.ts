// Reads a space's whole identity graph and checks its invariants. For tests
// and operators (SCAN-based: never on a hot path). The layout is the store's
// (@engage/identity identity-graph.store.ts); only its snapshot is read here.
import type { GraphSnapshot, IdentityGraphStore } from '@engage/identity';

export type { GraphSnapshot };

/** A space's whole graph (SCAN, through the graph's owner module). */
export function readGraph(graph: IdentityGraphStore, spaceId: string): Promise<GraphSnapshot> {
  return graph.snapshot(spaceId);
}

/** Follows merges from any profile id ever handed out to the live survivor. */
export function survivorOf(snap: GraphSnapshot, profileId: string): string {
  let pid = profileId;
  for (let hops = 0; hops < 1000 && snap.aliases.has(pid); hops++) pid = snap.aliases.get(pid)!;
  return pid;
}

/**
 * The graph's invariants; returns the violations (empty when sound):
 * every id points to a live profile that holds it; every id of a live profile
 * points back to it (so no id is on two live profiles); merged profiles hold
 * nothing and lead to a live survivor.
 */
export function graphViolations(snap: GraphSnapshot): string[] {
  const out: string[] = [];
  for (const [id, pid] of snap.ids) {
    if (snap.aliases.has(pid)) out.push(`id ${id} points to merged profile ${pid}`);
    if (!snap.profiles.get(pid)?.has(id)) out.push(`id ${id} points to ${pid}, which does not hold it`);
  }
  for (const [pid, ids] of snap.profiles) {
    if (snap.aliases.has(pid)) out.push(`merged profile ${pid} still holds ids`);
    for (const id of ids) if (snap.ids.get(id) !== pid) out.push(`profile ${pid} holds ${id}, which points to ${snap.ids.get(id)}`);
  }
  for (const pid of snap.aliases.keys()) {
    const s = survivorOf(snap, pid);
    if (!snap.profiles.has(s)) out.push(`merged profile ${pid} leads to ${s}, which is not live`);
  }
  return out;
}
