// An attacker's page, served by this script's own HTTP server on another
// port of 127.0.0.1 (so another origin than the native port's, in the same
// address space: Chromium's Private Network Access checks, which stop a
// public site's page, do not apply to a local or intranet one), makes
// Debian's headless Chromium send a native command to the native port: a
// `fetch` POST with mode "no-cors" and a text/plain body, and an HTML form
// posted as text/plain into an iframe. Neither needs a CORS preflight, so the
// browser sends both. Started by native_cross_origin_test.cc, which then
// checks that the command never ran; by hand:
//
//   node tests/e2e/native_cross_origin.e2e.mjs --modules=DIR/node_modules \
//     --native_port=3550 --command='{"cmd":...}'
//
// Prints one line per request; exit status 0 once both were sent (whatever
// the browser made of the answer), 1 on an error of the script itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, ...rest] = arg.replace(/^--/, '').split('=');
    return [key, rest.join('=')];
  }),
);
const { native_port: nativePort, command } = args;
if (!args.modules || !nativePort || !command) {
  console.error('usage: native_cross_origin.e2e.mjs --modules= --native_port= --command=');
  process.exit(2);
}
const { chromium } = createRequire(join(args.modules, 'noop.js'))('playwright-core');

const attacker = createServer((request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/html' });
  response.end('<!doctype html><title>attacker</title><p>another origin</p>');
});
await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${attacker.address().port}/attacker.html`;

const profile = mkdtempSync(join(tmpdir(), 'telestra-chromium-'));
let context;
let status = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60000,
  });
  const page = await context.newPage();
  await page.goto(url, { timeout: 20000 });
  const target = `http://127.0.0.1:${nativePort}/`;
  console.log(`page ${page.url()} posts to ${target}`);

  const fetched = await page.evaluate(
    async ({ target, command }) => {
      try {
        const response = await fetch(target, {
          method: 'POST',
          mode: 'no-cors',
          headers: { 'Content-Type': 'text/plain' },
          body: command,
        });
        return `fetch resolved (type ${response.type})`;
      } catch (error) {
        return `fetch rejected: ${error}`;
      }
    },
    { target, command },
  );
  console.log(fetched);

  // A form's text/plain body is `name=value`: a name that is the command
  // up to its last quote and a value that closes it make a JSON object.
  const cut = command.lastIndexOf('"');
  const formed = await page.evaluate(
    ({ target, name, value }) =>
      new Promise((resolve) => {
        const frame = document.createElement('iframe');
        frame.name = 'native-post';
        document.body.appendChild(frame);
        const form = document.createElement('form');
        form.method = 'POST';
        form.action = target;
        form.enctype = 'text/plain';
        form.target = 'native-post';
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = name;
        input.value = value;
        form.appendChild(input);
        document.body.appendChild(form);
        const timer = setTimeout(() => resolve('form posted (no load event in 10 s)'), 10000);
        frame.addEventListener('load', () => {
          clearTimeout(timer);
          resolve('form posted (the frame loaded an error page)');
        });
        form.submit();
      }),
    { target, name: command.slice(0, cut), value: `x${command.slice(cut)}` },
  );
  console.log(formed);
} catch (error) {
  console.error(`FAILED ${error.stack || error}`);
  status = 1;
} finally {
  if (context) await context.close().catch(() => {});
  attacker.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
