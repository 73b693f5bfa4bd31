// Reads the messages a real SMTP server (aiosmtpd, started by the Rust test) stored in a
// Maildir: the browser scripts follow the links Latchkey mailed, as a person would.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WAIT } from './harness.mjs';

// Header fields of a message or a part (folded lines joined), lower-cased names.
function headers(block) {
  const out = {};
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

function split(raw) {
  const m = raw.match(/\r?\n\r?\n/);
  return m ? [raw.slice(0, m.index), raw.slice(m.index + m[0].length)] : [raw, ''];
}

function decode(body, encoding) {
  switch ((encoding || '7bit').toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return Buffer.from(body.replace(/=\r?\n/g, '')
        .replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1')
        .toString('utf8');
    default:
      return body;
  }
}

// The text/plain body of a raw message.
function plainText(raw) {
  const [head, body] = split(raw);
  const h = headers(head);
  const boundary = (h['content-type'] || '').match(/boundary="?([^";]+)"?/);
  if (!boundary) return decode(body, h['content-transfer-encoding']);
  for (const part of body.split(`--${boundary[1]}`)) {
    const [ph, pb] = split(part.replace(/^\r?\n/, ''));
    const p = headers(ph);
    if ((p['content-type'] || '').startsWith('text/plain')) {
      return decode(pb, p['content-transfer-encoding']);
    }
  }
  return '';
}

// Waits for the message to `to` whose subject is `subject` (the newest such), and returns
// its text.
export async function waitForMail(dir, to, subject) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const newDir = join(dir, 'new');
    let files = [];
    try { files = readdirSync(newDir); } catch { /* not created yet */ }
    const found = files.map((f) => readFileSync(join(newDir, f), 'utf8'))
      .map((raw) => ({ h: headers(split(raw)[0]), raw }))
      .filter(({ h }) => (h.to || '').includes(to) && h.subject === subject);
    if (found.length) return plainText(found.at(-1).raw);
    if (Date.now() > deadline) throw new Error(`no message "${subject}" to ${to} in ${dir}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The first link in `text` that starts with `prefix`.
export function linkIn(text, prefix) {
  const i = text.indexOf(prefix);
  if (i < 0) throw new Error(`no link starting ${prefix} in:\n${text}`);
  return text.slice(i).split(/\s/)[0];
}
