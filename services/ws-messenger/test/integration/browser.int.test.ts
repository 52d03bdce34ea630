/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The browser client in headless Chromium (spec §3.8, acceptance §7.7): register, see `general`,
 * create a group, post, and see messages from another door arrive live; phone-sized screenshots
 * go to test-output/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { messagesV1 } from '@hubbub/proto';
import { ensurePublic, makeUser, post, principalOf, seed } from './helpers/fixtures';
import type { U } from './helpers/fixtures';
import { ROOT, startStack } from './helpers/stack';
import type { Stack } from './helpers/stack';
import type { WsmServer } from '../../src/server';

const OUT = join(ROOT, 'test-output', 'ws-messenger');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const PHONE = { width: 390, height: 844 };

let s: Stack;
let w: WsmServer;
let browser: Browser;
let base: string;
let general: string;
const consoleErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  s = await startStack();
  w = await s.wsm({ WSM_PUBLIC_CHANNELS: 'general' });
  base = `http://127.0.0.1:${w.port}`;
  general = (await ensurePublic(s, ['general']))[0]!.id;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

async function newPage(viewport = PHONE): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport, isMobile: viewport.width < 700, hasTouch: viewport.width < 700 });
  const page = await ctx.newPage();
  page.setDefaultTimeout(5_000);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('dialog', (d) => void d.accept(d.type() === 'prompt' ? 'edited text' : undefined));
  return { ctx, page };
}

async function register(page: Page, login: string): Promise<void> {
  await page.goto(base + '/');
  await page.fill('#register-login', login);
  await page.fill('#register-password', 'password');
  await page.click('#register-button');
  await page.waitForSelector('#chat-view:not([hidden])');
}

/** Shows the flow list (on a phone it is behind the ☰ button). */
async function showFlows(page: Page): Promise<void> {
  if (!(await page.isVisible('#flow-list'))) await page.click('#toggle-flows');
}

async function openFlow(page: Page, name: string): Promise<void> {
  await showFlows(page);
  await page.click(`#flow-list button:has-text("${name}")`);
  await page.waitForSelector('#message-input:not([disabled])');
}

/** Waits until a message with exactly this text is shown in the open flow. */
async function waitForMessage(page: Page, text: string, timeoutMs: number): Promise<void> {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === t),
    text,
    { timeout: timeoutMs },
  );
}

const messages = (page: Page): Promise<string[]> =>
  page.$$eval('#messages .msg .text', (els) => els.map((e) => e.textContent ?? ''));

describe('browser client', () => {
  let page: Page;
  let ctx: BrowserContext;
  let me: string;

  it('W1 loads / with the CSP header, no console errors and the login form', async () => {
    ({ ctx, page } = await newPage());
    const res = await page.goto(base + '/');
    expect(res!.status()).toBe(200);
    expect(res!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.waitForSelector('#login-form');
    expect(await page.isVisible('#login-form')).toBe(true);
    expect(consoleErrors).toEqual([]);
    await page.screenshot({ path: join(OUT, 'w1-login-phone.png'), fullPage: true });
  });

  it('W2 registers and shows general; W4 sends hello once; a post from another door arrives live', async () => {
    me = `web${Date.now() % 100000}`;
    await register(page, me);
    await showFlows(page);
    await page.waitForSelector('#flow-list button:has-text("general")');
    await openFlow(page, 'general');
    const t0 = Date.now();
    await page.fill('#message-input', 'hello');
    await page.press('#message-input', 'Enter');
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === 'hello'),
    );
    expect(Date.now() - t0).toBeLessThan(1_000);
    // another door (irc-binary's path: message-store gRPC with a guest principal)
    const t1 = Date.now();
    await post(s, general, { uuid: 'guest:frank', username: 'frank' }, 'yo from irc');
    await page.waitForFunction(
      () => [...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === 'yo from irc'),
      undefined,
      { timeout: 2_000 },
    );
    expect(Date.now() - t1).toBeLessThan(1_000);
    const texts = await messages(page);
    expect(texts.filter((t) => t === 'hello')).toHaveLength(1);
    const authors = await page.$$eval('#messages .msg .author', (els) => els.map((e) => e.textContent));
    expect(authors).toContain('frank (guest)');
    await page.screenshot({ path: join(OUT, 'w2-general-phone.png'), fullPage: true });
  });

  it('W7 HTML in a message is shown literally', async () => {
    let dialogs = 0;
    page.on('dialog', () => dialogs++);
    await page.fill('#message-input', '<img src=x onerror=alert(1)>');
    await page.press('#message-input', 'Enter');
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#messages .msg .text')].some(
        (e) => e.textContent === '<img src=x onerror=alert(1)>',
      ),
    );
    expect(await page.$$('#messages img')).toHaveLength(0);
    expect(dialogs).toBe(0);
  });

  it('W10 creating a group with another user shows it in their list live; W6 edit and delete show live', async () => {
    const { page: other } = await newPage({ width: 1200, height: 800 });
    const login2 = `peer${Date.now() % 100000}`;
    await register(other, login2);
    const uuid2 = await other.evaluate(
      () => (JSON.parse(sessionStorage.getItem('hubbub.session')!) as { uuid: string }).uuid,
    );
    // U1 creates a group with U2 (by id)
    await showFlows(page);
    await page.click('#new-group');
    await page.fill('#group-title', 'pair');
    await page.fill('#group-extra', uuid2);
    await page.click('#group-create');
    await page.waitForSelector('#flow-list button.active:has-text("pair")', { state: 'attached' });
    await page.waitForSelector('#message-input:not([disabled])');
    await other.waitForSelector('#flow-list button:has-text("pair")', { timeout: 2_000 });
    await openFlow(other, 'pair');
    await page.fill('#message-input', 'first version');
    await page.press('#message-input', 'Enter');
    await other.waitForFunction(() =>
      [...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === 'first version'),
    );
    // edit (the dialog handler answers the prompt with "edited text")
    await page.click('#messages .msg:has-text("first version") button.edit');
    await other.waitForSelector('#messages .msg:has-text("edited text") .edited', { timeout: 2_000 });
    await page.click('#messages .msg:has-text("edited text") button.delete');
    await other.waitForSelector('#messages .msg.deleted:has-text("Message deleted")', { timeout: 2_000 });
    await other.screenshot({ path: join(OUT, 'w6-desktop.png') });
    await other.context().close();
  });

  it('W3 a flow with 150 messages shows the newest 100; load older shows the rest', async () => {
    const u: U = await makeUser(s, `hist${Date.now() % 100000}`);
    const r = await s.msgClient.createChannel(
      messagesV1.CreateChannelRequest.fromPartial({
        principal: principalOf(u),
        kind: messagesV1.ChannelKind.CHANNEL_KIND_GROUP,
        title: 'history',
        visibility: messagesV1.Visibility.VISIBILITY_PRIVATE,
        memberIds: [u.uuid],
      }),
    );
    const F = r.channel!.id;
    const now = Math.floor(Date.now() / 1000);
    await seed(
      s,
      F,
      Array.from({ length: 150 }, (_, i) => ({ author: u, sec: now - 1000 + i, text: `h${i}` })),
    );
    const { page: p } = await newPage();
    await p.goto(base + '/');
    await p.fill('#login-name', u.login);
    await p.fill('#login-password', u.password);
    await p.click('#login-button');
    await p.waitForSelector('#chat-view:not([hidden])');
    await showFlows(p);
    await p.waitForSelector('#flow-list button:has-text("history")');
    await openFlow(p, 'history');
    await p.waitForFunction(() => document.querySelectorAll('#messages .msg').length === 100);
    expect((await messages(p))[0]).toBe('h50');
    await p.click('#load-older');
    await p.waitForFunction(() => document.querySelectorAll('#messages .msg').length === 150);
    const all = await messages(p);
    expect(all).toEqual(Array.from({ length: 150 }, (_, i) => `h${i}`));
    // W8: reload keeps the session and shows history; logout clears sessionStorage
    await p.reload();
    await p.waitForSelector('#chat-view:not([hidden])');
    await p.waitForSelector('#flow-list button:has-text("history")', { state: 'attached' });
    await openFlow(p, 'history');
    await p.waitForFunction(() => document.querySelectorAll('#messages .msg').length === 100);
    await p.click('#logout');
    await p.waitForSelector('#login-form');
    expect(await p.evaluate(() => sessionStorage.getItem('hubbub.session'))).toBeNull();
    await p.context().close();
  });

  it('W9 after a ws-messenger restart the client reconnects and shows a message posted during the downtime', async () => {
    let w2 = await s.wsm({ WSM_PUBLIC_CHANNELS: 'general' });
    const port = w2.port;
    const { page: p } = await newPage();
    await p.goto(`http://127.0.0.1:${port}/`);
    await p.fill('#register-login', `rs${Date.now() % 100000}`);
    await p.fill('#register-password', 'password');
    await p.click('#register-button');
    await p.waitForSelector('#chat-view:not([hidden])');
    await openFlow(p, 'general');
    await p.waitForSelector('#conn-status.online');
    await w2.close();
    await p.waitForSelector('#conn-status:not(.online)');
    await post(s, general, { uuid: 'guest:ghost', username: 'ghost' }, 'posted while you were away');
    w2 = await s.wsm({ WSM_PUBLIC_CHANNELS: 'general', WSM_PORT: String(port) });
    await waitForMessage(p, 'posted while you were away', 10_000);
    await p.context().close();
  }, 30_000);

  it('a connection whose subscribe fails is closed and retried with backoff; live updates then work', async () => {
    const { page: p } = await newPage();
    // The first subscribe of the page is answered 503 (as while identity restarts), the rest reach the server.
    let failed = 0;
    await p.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const text = typeof m === 'string' ? m : m.toString('utf8');
        if (failed === 0 && text.includes('"type":"subscribe"')) {
          failed++;
          const T = Math.floor(Date.now() / 1000);
          ws.send(
            JSON.stringify({
              type: 'subscribe',
              data: null,
              errors: { code: 503, status: 'Service Unavailable', time: T, detail: 'test: backend restarting' },
              jsonapi: { version: '1.0', revision: '17' },
            }),
          );
          return;
        }
        server.send(m);
      });
      server.onMessage((m) => ws.send(m));
    });
    await register(p, `sf${Date.now() % 100000}`);
    await openFlow(p, 'general');
    expect(failed).toBe(1);
    await post(s, general, { uuid: 'guest:ghost', username: 'ghost' }, 'live after a failed subscribe');
    await waitForMessage(p, 'live after a failed subscribe', 10_000);
    await p.context().close();
  }, 30_000);

  it('the page fits a phone screen (no horizontal scrolling) and has no console errors', async () => {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(OUT, 'phone-final.png') });
    expect(consoleErrors).toEqual([]);
    await ctx.close();
  });
});
