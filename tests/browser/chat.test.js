// The chat page in a real browser: Debian's chromium, headless, driven by
// puppeteer-core (no browser downloaded). Run by tests/e2e_browser.sh, which
// starts coserved, hands over its ports, restarts it when asked (the dropped
// connection), and judges it. Two pages and an nc user in one room; the page
// over websocket_tls with the test CA (trusted in the NSS database of the
// HOME the script made). Prints "ok: NAME" or "FAIL: NAME" per check.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const puppeteer = require('puppeteer-core');

const env = (name) => {
  if (!process.env[name]) throw new Error(name + ' is not set');
  return process.env[name];
};
const work = env('WORK');
const ports = { tcp: env('TCP_PORT'), ws: env('WS_PORT'), wss: env('WSS_PORT') };
const screenshot = env('SCREENSHOT');
let failures = 0;
let passes = 0;

function check(name, ok, detail) {
  if (ok) {
    passes += 1;
    console.log('ok: ' + name);
  } else {
    failures += 1;
    console.log('FAIL: ' + name + (detail === undefined ? '' : '\n  ' + detail));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `probe` (async, truthy when done) for up to `seconds`.
async function eventually(seconds, probe) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value || Date.now() > end) return value;
    await sleep(100);
  }
}

// The real nc, as a chat user: lines in, lines out.
class Nc {
  constructor(port) {
    this.out = '';
    this.child = spawn('nc', ['127.0.0.1', port], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout.on('data', (d) => { this.out += d.toString('utf8'); });
  }
  say(line) { this.child.stdin.write(line + '\r\n'); }
  has(text) { return this.out.includes(text); }
  async seen(name, text, seconds = 10) {
    check(name, await eventually(seconds, async () => this.has(text)), 'nc got:\n' + this.out.slice(-500));
  }
  stop() { this.child.kill('SIGTERM'); }
}

// A page: the message log's text, the list of members, the status line.
async function logText(page) { return page.$eval('#messages', (e) => e.innerText); }
async function members(page) { return page.$$eval('#members li', (items) => items.map((i) => i.textContent)); }
async function say(page, text) {
  await page.focus('#line');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}
async function pageSeen(page, name, text, seconds = 10) {
  const ok = await eventually(seconds, async () => (await logText(page)).includes(text));
  check(name, ok, ok ? undefined : 'the page shows:\n' + (await logText(page).catch(() => '?')).slice(-500));
}
async function waitText(page, selector, text, seconds = 10) {
  return eventually(seconds, async () => (await page.$eval(selector, (e) => e.textContent)).includes(text));
}

async function open(browser, url, viewport) {
  const page = await browser.newPage();
  if (viewport) await page.setViewport(viewport);
  page.dialogs = 0;
  page.on('dialog', async (d) => { page.dialogs += 1; await d.dismiss(); });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  // Content-policy violations, counted by the browser's own event.
  await page.evaluateOnNewDocument(() => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  const response = await page.goto(url, { waitUntil: 'load' });
  page.csp = response.headers()['content-security-policy'];
  return page;
}

// Asks e2e_browser.sh to restart coserved (on the same ports) and waits for it.
async function restartServer() {
  fs.writeFileSync(path.join(work, 'restart.request'), '');
  return eventually(60, async () => fs.existsSync(path.join(work, 'restart.done')));
}

async function main() {
  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',  // root in a container
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',  // no name is ever resolved
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-domain-reliability', '--no-pings', '--no-first-run',
    ],
  });
  const base = 'http://127.0.0.1:' + ports.ws + '/';
  let nc = new Nc(ports.tcp);
  try {
    await nc.seen('nc: welcome', '* welcome to #lobby');
    nc.say('/nick bob');
    await nc.seen('nc: named bob', '* you are now known as bob');

    const ann = await open(browser, base, { width: 1000, height: 700 });
    check('the page is served with its content policy', ann.csp === "default-src 'self'", ann.csp);
    check('page A connects and is welcomed', await waitText(ann, '#me', 'you are guest'));
    await say(ann, '/nick ann');
    check('page A: /nick changes the name shown', await waitText(ann, '#me', 'you are ann'));
    const cat = await open(browser, base, { width: 375, height: 667, isMobile: true, hasTouch: true });
    check('page B connects', await waitText(cat, '#me', 'you are guest'));
    await say(cat, '/nick cat');
    check('page B: named cat', await waitText(cat, '#me', 'you are cat'));
    const all = await eventually(10, async () => {
      const m = await members(ann);
      return ['ann', 'bob', 'cat'].every((n) => m.includes(n)) && m.length === 3;
    });
    check('page A lists the members: ann, bob, cat', all, JSON.stringify(await members(ann)));
    check('the room is shown', (await ann.$eval('#room', (e) => e.textContent)) === '#lobby');

    await say(ann, 'hello from ann');
    await nc.seen('nc hears page A', '<ann> hello from ann');
    await pageSeen(cat, 'page B hears page A', '<ann> hello from ann');
    await say(cat, 'hello from cat');
    await nc.seen('nc hears page B', '<cat> hello from cat');
    await pageSeen(ann, 'page A hears page B', '<cat> hello from cat');
    nc.say('hi pages');
    await pageSeen(ann, 'page A hears nc', '<bob> hi pages');
    await pageSeen(cat, 'page B hears nc', '<bob> hi pages');
    const stamped = await ann.$$eval('#messages li', (items) => items.every((i) => /^\d\d:\d\d$/.test(i.querySelector('time')?.textContent || '')));
    check('every message has its time', stamped);
    await say(ann, '/me waves');
    await nc.seen('nc sees /me from the page', '* ann waves');

    // An HTML line is shown as text and never run.
    nc.say('<img src=x onerror=alert(1)>');
    await pageSeen(ann, 'an HTML line is shown as text', '<bob> <img src=x onerror=alert(1)>');
    await sleep(500);
    check('no element was made from it', (await ann.$$('#messages img')).length === 0);
    check('nothing ran (no alert)', ann.dialogs === 0 && cat.dialogs === 0);

    // Accessibility: labelled input, a live log, keyboard use (all input above was typed).
    const a11y = await ann.evaluate(() => ({
      label: document.querySelector('label[for=line]')?.textContent.trim().length > 0,
      log: document.getElementById('messages').getAttribute('role') === 'log',
      live: document.getElementById('messages').getAttribute('aria-live') === 'polite',
      status: document.getElementById('status').getAttribute('role') === 'status',
      lang: document.documentElement.lang === 'en',
    }));
    check('the input has a label, the log is a polite live region, the status a status', Object.values(a11y).every(Boolean), JSON.stringify(a11y));
    await cat.keyboard.press('Tab');
    check('the keyboard reaches the controls', await cat.evaluate(() => document.activeElement && document.activeElement !== document.body));
    const fits = await cat.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    check('a phone-sized page has no sideways scrolling', fits);

    // /join from the page: the room changes, and its members.
    await say(ann, '/join dev');
    check('page A: /join shows the new room', await waitText(ann, '#room', '#dev'));
    await nc.seen('nc sees page A leave for #dev', '* ann left for #dev');
    check('page A lists only itself in #dev', await eventually(10, async () => JSON.stringify(await members(ann)) === '["ann"]'), JSON.stringify(await members(ann)));
    nc.say('/join dev');
    check('page A lists bob once he joins', await eventually(10, async () => (await members(ann)).includes('bob')));
    check('page B no longer lists ann', await eventually(10, async () => !(await members(cat)).includes('ann')), JSON.stringify(await members(cat)));
    await ann.screenshot({ path: screenshot });

    // A dropped connection: the server restarts; the page says so, reconnects
    // with backoff, and takes back its name and room.
    nc.stop();
    check('coserved restarted', await restartServer());
    await pageSeen(ann, 'page A says the connection was lost', 'connection lost (server shutting down); reconnecting in');
    // What the page shows after its last "connection lost": a new welcome, its name and room taken back.
    const since = async (page) => { const t = await logText(page); return t.slice(t.lastIndexOf('connection lost')); };
    check('page A reconnects as ann, back in #dev', await eventually(30, async () => {
      const t = await since(ann);
      return t.includes('* welcome to #lobby') && t.includes('* you are now known as ann') && t.includes('* you joined #dev');
    }), await since(ann));
    check('page A shows #dev and ann', (await ann.$eval('#room', (e) => e.textContent)) === '#dev' &&
      (await ann.$eval('#me', (e) => e.textContent)) === 'you are ann');
    check('page B reconnects as cat', await eventually(30, async () => (await since(cat)).includes('* you are now known as cat')));
    check('the status says connected', await waitText(ann, '#status', 'connected'));
    nc = new Nc(ports.tcp);
    await nc.seen('nc: welcome again', '* welcome to #lobby');
    nc.say('/join dev');
    await nc.seen('nc: in #dev', '* you joined #dev');
    await say(ann, 'back again');
    await nc.seen('nc hears page A after the reconnect', '<ann> back again');

    // The page over websocket_tls, the test CA trusted by the browser.
    const secure = await open(browser, 'https://127.0.0.1:' + ports.wss + '/', { width: 800, height: 600 });
    check('the page over TLS connects (wss)', await waitText(secure, '#me', 'you are guest'));
    check('it is https', (await secure.evaluate(() => location.protocol)) === 'https:');
    await say(secure, '/join dev');
    check('the TLS page joins #dev', await waitText(secure, '#room', '#dev'));
    await say(secure, 'hello over tls');
    await nc.seen('nc hears the TLS page', 'hello over tls');
    await pageSeen(ann, 'page A hears the TLS page', 'hello over tls');

    for (const [name, page] of [['page A', ann], ['page B', cat], ['the TLS page', secure]]) {
      const violations = await page.evaluate(() => window.violations);
      check(name + ': no content-policy violation', violations.length === 0, JSON.stringify(violations));
      const errors = page.errors.filter((e) => !e.includes('favicon') && !e.includes('404') && !e.includes('ERR_CONNECTION_REFUSED'));
      check(name + ': no script error', errors.length === 0, JSON.stringify(errors));
    }
    await say(ann, '/quit');
    check('after /quit the page says so and does not reconnect', await waitText(ann, '#status', 'you left', 10));
  } catch (e) {
    check('the browser test ran to its end', false, e.stack);
  } finally {
    nc.stop();
    await browser.close();
  }
  console.log('e2e_browser (chromium): ' + passes + ' passed, ' + failures + ' failed');
  process.exit(failures === 0 ? 0 : 1);
}

main();
