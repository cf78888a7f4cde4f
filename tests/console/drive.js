// Drives wafer's console in headless Chromium (Debian's, through
// puppeteer-core): signs in, creates an app whose title is an XSS attempt,
// logs a user in through the WeChat mock, finds the session by open_id,
// revokes it, and checks that /mina/auth then answers 401. Also: a wrong
// token shows an error. Saves screenshots of the overview and the sessions
// page into SHOTS (the README shows them).
//
//   node drive.js <wafer url> <admin token> <chromium path> <shots dir>
// puppeteer-core is resolved from NODE_PATH (scripts/test installs it).
'use strict';

const puppeteer = require('puppeteer-core');

const [base, token, chromium, shots] = process.argv.slice(2);
const XSS = '<img src=x onerror=alert(1)>';

function fail(message) {
  console.error('FAIL: ' + message);
  process.exit(1);
}

async function post(path, body) {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800 });
  const dialogs = [];
  let confirmWith = null; // the text to type into the next prompt
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    if (confirmWith !== null) await d.accept(confirmWith);
    else await d.dismiss();
  });
  const violations = [];
  page.on('console', (m) => {
    if (m.type() === 'error') violations.push(m.text());
  });

  // A wrong token shows an error and stays on the sign-in form.
  await page.goto(base + '/console/', { waitUntil: 'networkidle0' });
  await page.type('#token', 'not-the-token');
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector('#error:not([hidden])');
  const wrong = await page.$eval('#error', (e) => e.textContent);
  if (!/refused|failed/i.test(wrong)) fail('no error for a wrong token: ' + wrong);

  // Sign in.
  await page.type('#token', token);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForSelector('#overview:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#stores dt').length > 0);
  // Some traffic, so that the charts have something to draw after two
  // polls (the page polls every 5 s).
  const traffic = setInterval(() => {
    post('/mina/auth', { uuid: '00000000-0000-4000-8000-000000000000', skey: 'x' }).catch(() => {});
  }, 50);
  await page.waitForFunction(() => document.getElementById('rate-auth').textContent !== '', {
    timeout: 15000,
  });
  clearInterval(traffic);
  await page.screenshot({ path: shots + '/console-overview.png' });

  // An app whose title is an XSS attempt: it must show as text.
  await page.click('nav [data-view=apps]');
  await page.waitForSelector('#apps:not([hidden])');
  await page.type('#app-title', XSS.slice(0, 30));
  await page.type('#app-appid', 'wxconsole');
  await page.type('#app-secret', 'console-secret');
  await page.click('#app-save');
  await page.waitForFunction(
    () => [...document.querySelectorAll('#app-rows td')].some((td) => td.textContent === 'wxconsole'),
  );
  const imgs = await page.$$eval('#app-rows img', (l) => l.length);
  if (imgs !== 0) fail('the XSS title became an element');
  const title = await page.$eval('#app-rows tr td:nth-child(2)', (td) => td.textContent);
  if (title !== XSS.slice(0, 30)) fail('the title does not render as text: ' + title);
  if (dialogs.length) fail('a dialog opened: ' + dialogs.join(', '));
  const secretShown = await page.evaluate(() => document.body.textContent.includes('console-secret'));
  if (secretShown) fail('the secret is shown');

  // A user logs in through the WeChat mock.
  const appId = await page.$eval('#app-rows tr td:first-child', (td) => Number(td.textContent));
  const login = await post('/mina/login', { app_id: appId, code: 'carol.1' });
  if (login.status !== 200) fail('login: ' + JSON.stringify(login.body));
  const { uuid, skey } = login.body.data;
  const auth = { app_id: appId, uuid, skey };
  if ((await post('/mina/auth', auth)).status !== 200) fail('auth before revoke');

  // Find the session by open_id, show it, revoke it.
  await page.click('#app-rows tr td:last-child button'); // Sessions
  await page.waitForSelector('#sessions:not([hidden])');
  await page.waitForSelector('#session-rows tr');
  const openId = await page.$eval('#session-rows tr td:first-child', (td) => td.textContent);
  await page.type('#search-open-id', openId);
  await page.click('#search-form button[type=submit]');
  // The rows of the search, not the list they replace.
  await page.waitForFunction(
    (id) => document.getElementById('session-rows').dataset.openId === id,
    {},
    openId,
  );
  if ((await page.$$('#session-rows tr')).length !== 1) fail('the search found not one row');
  await page.click('#session-rows tr td:last-child button'); // Details
  await page.waitForSelector('#user:not([hidden])');
  const shown = await page.$eval('#user-fields', (d) => d.textContent);
  if (!shown.includes(uuid) || !shown.includes('expires in')) fail('user details: ' + shown);
  await page.screenshot({ path: shots + '/console-sessions.png' });
  await page.click('#user-revoke');
  await page.waitForSelector('#user[hidden]');
  const after = await post('/mina/auth', auth);
  if (after.status !== 401) fail('auth after revoke answered ' + after.status);

  // Edit the app (the secret stays write-only), then delete it, confirmed
  // by typing its appid.
  await page.click('nav [data-view=apps]');
  await page.waitForSelector('#app-rows tr');
  // Clicked in the page, in one step: the table is redrawn when the apps
  // are polled, and a handle taken before a redraw is detached after it.
  const clickRowButton = (i) =>
    page.evaluate((n) => document.querySelectorAll('#app-rows tr td:last-child button')[n].click(), i);
  await clickRowButton(1); // Edit
  const secretField = await page.$eval('#app-secret', (e) => e.value);
  if (secretField !== '') fail('the secret is shown in the edit form');
  await page.$eval('#app-title', (e) => { e.value = ''; });
  await page.type('#app-title', 'Renamed');
  await page.click('#app-save');
  await page.waitForFunction(
    () => [...document.querySelectorAll('#app-rows td')].some((td) => td.textContent === 'Renamed'),
  );
  confirmWith = 'wxconsole';
  await clickRowButton(3); // Delete
  await page.waitForFunction(() => document.querySelectorAll('#app-rows tr').length === 0);
  confirmWith = null;

  // Narrow screen: still usable (no horizontal scrolling of the page).
  await page.setViewport({ width: 380, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (overflow) fail('the page scrolls sideways at a phone width');

  if (violations.some((v) => /Content Security Policy/i.test(v))) {
    fail('CSP violations: ' + violations.join(' | '));
  }
  await browser.close();
  console.log('console ok');
})().catch((e) => fail(e.stack || String(e)));
