import { expect, type Page } from '@playwright/test';

/// What the connection pill says at one instant (read in one task of the page).
interface PillState {
  status: string;
  attempt: number | null;
  retryIn: number;
}

async function readPill(page: Page): Promise<PillState> {
  return page.evaluate(() => {
    const pill = document.querySelector('[role="status"][data-status]')!;
    const attempt = pill.getAttribute('data-attempt');
    return {
      status: pill.getAttribute('data-status')!,
      attempt: attempt === null ? null : Number(attempt),
      retryIn: Number(pill.getAttribute('data-retry-in') ?? 0),
    };
  });
}

/// How long one connection attempt may take to end one way or the other (open a socket, check the
/// session, resubscribe), on a loaded machine.
const ATTEMPT_MS = 15_000;

/// Waits until the pill is Live again after the network or the server came back, following what the
/// client announces rather than a fixed time: while it waits out a backoff delay ("Reconnecting in
/// 8 s") the wait allows that delay plus one attempt, and every further retry it announces extends
/// the wait the same way. Fails at once if the client gives up (Offline). Returns the number of
/// attempts that failed on the way, for tests that bound it.
export async function expectLiveAgain(page: Page): Promise<number> {
  let failed = 0;
  let seen = await readPill(page);
  while (seen.status !== 'live') {
    expect(seen.status, 'the client gave up or was refused').not.toMatch(/^(offline|signed-out|live-off)$/);
    const from = `${seen.status}/${seen.attempt}`;
    await expect
      .poll(async () => {
        const now = await readPill(page);
        return `${now.status}/${now.attempt}`;
      }, { timeout: seen.retryIn * 1_000 + ATTEMPT_MS, intervals: [100] })
      .not.toBe(from);
    seen = await readPill(page);
    // Every new retry the pill announces means one more attempt failed.
    if (seen.status === 'reconnecting') failed += 1;
  }
  return failed;
}
