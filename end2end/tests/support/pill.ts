import { expect, type Page } from '@playwright/test';

/// What the connection pill says at one instant (read in one task of the page).
export interface PillState {
  status: string;
  attempt: number | null;
  retryIn: number;
  /// On a fallback transport: when the client tries the faster one next (ms since the epoch).
  probeAt: number | null;
}

export async function readPill(page: Page): Promise<PillState> {
  return page.evaluate(() => {
    const pill = document.querySelector('[role="status"][data-status]')!;
    const attempt = pill.getAttribute('data-attempt');
    const probeAt = pill.getAttribute('data-probe-at');
    return {
      status: pill.getAttribute('data-status')!,
      attempt: attempt === null ? null : Number(attempt),
      retryIn: Number(pill.getAttribute('data-retry-in') ?? 0),
      probeAt: probeAt === null ? null : Number(probeAt),
    };
  });
}

/// How long to allow for the pill to move on from `seen`: the backoff it announces, or the time
/// until its next probe of a faster transport, plus one attempt.
function patience(seen: PillState): number {
  const probe = seen.probeAt === null ? 0 : Math.max(0, seen.probeAt - Date.now());
  return seen.retryIn * 1_000 + probe + ATTEMPT_MS;
}

/// How long one connection attempt may take to end one way or the other (open a socket, check the
/// session, resubscribe), on a loaded machine.
const ATTEMPT_MS = 15_000;

/// Waits until the pill says `wanted` (`live` by default: the WebSocket) after the network or the
/// server came back, following what the client announces rather than a fixed time: while it waits
/// out a backoff delay ("Reconnecting in 8 s") the wait allows that delay plus one attempt, while it
/// is on a fallback transport the time until the next probe it announces plus one attempt, and every
/// further retry extends the wait the same way. Fails at once if the client gives up (Offline).
/// Returns the number of attempts that failed on the way, for tests that bound it.
export async function expectLiveAgain(page: Page, wanted = 'live'): Promise<number> {
  let failed = 0;
  let seen = await readPill(page);
  while (seen.status !== wanted) {
    expect(seen.status, 'the client gave up or was refused').not.toMatch(/^(offline|signed-out|live-off)$/);
    const from = `${seen.status}/${seen.attempt}/${seen.probeAt}`;
    await expect
      .poll(async () => {
        const now = await readPill(page);
        return `${now.status}/${now.attempt}/${now.probeAt}`;
      }, { timeout: patience(seen), intervals: [100] })
      .not.toBe(from);
    seen = await readPill(page);
    // Every new retry the pill announces means one more attempt failed.
    if (seen.status === 'reconnecting') failed += 1;
  }
  return failed;
}
