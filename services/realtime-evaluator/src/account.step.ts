// Account-level audiences: after users' state is saved, the accounts they are
// linked to are re-evaluated over all their users (ANY / ALL / NOT), and the
// account's changes are emitted (level `account`, profile_id = account id).
// Runs under the accounts' own locks, after the users' locks are released, so
// two writers never wait on each other in a cycle.
import { mergeTraits, newerTraits, noteTraitTimes } from '@engage/engine';
import {
  evaluateAccount,
  linkAccount,
  type ChangeCommitter,
  type ComputationsRegistry,
  type PendingChange,
  type ProfileRef,
  type ProfileStateRepository,
  type StoredProfile,
} from '@engage/profile-store';

export interface AccountWork {
  /** user -> accounts to link it to (group calls, account_link changes). */
  links: Array<{
    user: ProfileRef;
    accountId: string;
    groupId?: string | null;
    traits?: Record<string, unknown>;
    /** Event time of the group call that brought `traits`: an older call does not overwrite a newer one's (trait-times.ts). */
    at?: number;
  }>;
  /** Users merged away: no longer users of their accounts. */
  unlinks?: Array<{ user: ProfileRef; accountId: string }>;
  /** Users whose values or events changed: their accounts are re-evaluated. */
  users: StoredProfile[];
  /** What caused it (message id / identity change id): part of change_id. */
  cause: string;
  occurredAt: number;
}

export class AccountStep {
  constructor(
    private readonly deps: {
      profiles: ProfileStateRepository;
      registry: ComputationsRegistry;
      committer: ChangeCommitter;
      now?: () => number;
    },
  ) {}

  async handle(work: AccountWork): Promise<void> {
    const bySpace = new Map<string, Set<string>>();
    const add = (spaceId: string, accountId: string) => {
      if (!bySpace.has(spaceId)) bySpace.set(spaceId, new Set());
      bySpace.get(spaceId)!.add(accountId);
    };
    for (const l of [...work.links, ...(work.unlinks ?? [])]) add(l.user.spaceId, l.accountId);
    for (const u of work.users) for (const a of u.accounts ?? []) add(u.spaceId, a);
    const refs: ProfileRef[] = [...bySpace].flatMap(([spaceId, ids]) => [...ids].map((profileId) => ({ spaceId, profileId })));
    if (refs.length === 0) return;
    const now = this.deps.now?.() ?? Date.now();
    await this.deps.profiles.withLocks(refs, async () => {
      const accounts = await this.deps.profiles.load(refs);
      const byRef = new Map(accounts.map((a) => [`${a.spaceId}|${a.profileId}`, a]));
      for (const a of accounts) a.users ??= [];
      for (const l of work.links) {
        const account = byRef.get(`${l.user.spaceId}|${l.accountId}`)!;
        if (!account.users!.includes(l.user.profileId)) account.users!.push(l.user.profileId);
        if (l.groupId && !account.externalIds.some((x) => x.type === 'group_id' && x.id === l.groupId))
          account.externalIds.push({ type: 'group_id', id: l.groupId });
        // Bounded like a user's (PROFILE_LIMITS): a group call's traits past a limit are left out.
        // By event time, as a user's: a group call older than the one that set a trait does not overwrite it.
        if (l.traits) {
          const applied = l.at === undefined ? l.traits : newerTraits(l.traits, account.traitTimes, l.at);
          const merge = mergeTraits(account.traits, applied);
          if (l.at !== undefined) noteTraitTimes(account, applied, merge.refused, l.at);
        }
      }
      for (const u of work.unlinks ?? []) {
        const account = byRef.get(`${u.user.spaceId}|${u.accountId}`)!;
        account.users = account.users!.filter((id) => id !== u.user.profileId);
      }
      const pending: PendingChange[] = [];
      const touched = [];
      for (const account of accounts) {
        const { accounts: accountLevel, ordered } = this.deps.registry.forSpace(account.spaceId);
        touched.push({ profile: account, ordered: [] });
        if (accountLevel.length === 0) continue;
        // Fresh user documents (a user's own chunk has just saved them).
        const users = await this.deps.profiles.load(account.users!.map((profileId) => ({ spaceId: account.spaceId, profileId })));
        for (const change of evaluateAccount(account, users, accountLevel, ordered, now)) {
          pending.push({ profile: account, change, reason: 'realtime', occurredAt: work.occurredAt, cause: work.cause });
        }
      }
      await this.deps.committer.commit(touched, pending);
    });
  }
}

export { linkAccount };
