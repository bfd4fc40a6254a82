// One Authority (the CA's core, in process, no server) for a test file or describe block: made by
// test/ca/fixtures.ts makeCa() in `before` (at a given moment, so validity arithmetic is exact), closed and
// its temporary folder removed in `after`. The options may be computed in `before` (a database's DSN).
import { after, before } from 'node:test';
import type { Authority, AuthorityInitOptions } from '../../src/ca/authority.js';
import { makeCa } from '../ca/fixtures.js';

type Made = Awaited<ReturnType<typeof makeCa>>;

export interface AuthorityFixture {
  readonly ca: Authority;
  /** The temporary folder around the CA. */
  readonly root: string;
  /** The CA's directory, `<root>/ca`. */
  readonly caDir: string;
  /** Writes `data` to a file in the temporary folder and returns its path. */
  file(name: string, data: string | Buffer): string;
}

export function useAuthority(opts: Partial<AuthorityInitOptions> | (() => Promise<Partial<AuthorityInitOptions>>) = {}, now?: Date): AuthorityFixture {
  let made: Made | undefined;
  const get = (): Made => {
    if (!made) throw new Error('the Authority fixture is used before before() ran');
    return made;
  };
  before(async () => {
    made = await makeCa(typeof opts === 'function' ? await opts() : opts, now);
  });
  after(async () => {
    await made?.cleanup();
  });
  return {
    get ca() { return get().ca; },
    get root() { return get().root; },
    get caDir() { return get().caDir; },
    file: (name, data) => get().file(name, data),
  };
}

/** For a test that needs a CA of its own: makes one, runs `use` on it, and always closes and removes it. */
export async function withAuthority<T>(opts: Partial<AuthorityInitOptions>, now: Date, use: (fx: AuthorityFixture) => Promise<T>): Promise<T> {
  const made = await makeCa(opts, now);
  try {
    return await use(made);
  } finally {
    await made.cleanup();
  }
}
