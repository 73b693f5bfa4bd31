// RFC 6238 codes computed from the key a setup page shows, as an authenticator app would:
// shared by the browser scripts.
import { createHmac } from 'node:crypto';

// RFC 4648 base32 (no padding needed), as authenticator apps read the key.
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// The current RFC 6238 time step.
export function totpStep() {
  return Math.floor(Date.now() / 1000 / 30);
}

// A code for a step after `usedStep` (Latchkey accepts each step once and never a future
// one): waits for the next step to begin when `usedStep` is the current one.
export async function totpAfter(key, usedStep) {
  while (totpStep() <= usedStep) {
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return totp(key);
}

// RFC 6238 TOTP: HMAC-SHA1, 30-second steps, 6 digits, at now + offsetSecs.
export function totp(key, offsetSecs = 0) {
  const counter = Math.floor((Date.now() / 1000 + offsetSecs) / 30);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', base32Decode(key)).update(msg).digest();
  const o = mac[mac.length - 1] & 0x0f;
  const n = ((mac[o] & 0x7f) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
  return String(n % 1_000_000).padStart(6, '0');
}
