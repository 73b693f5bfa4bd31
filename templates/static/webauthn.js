// Latchkey WebAuthn: passkey sign-in (button and conditional-UI autofill), step-up with a
// passkey or security key, registration on the account pages, and confirmation of
// destructive account actions. The server's JSON uses base64url for binary fields.
"use strict";
(function () {
  const b64uToBuf = (s) => {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  };
  const bufToB64u = (buf) => {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const supported = () => typeof window.PublicKeyCredential === "function";

  function showError(root, message) {
    const el = root.querySelector("[data-webauthn-error]");
    if (el) {
      el.textContent = message;
      el.hidden = false;
    }
  }

  async function begin(url, fields) {
    const body = new URLSearchParams(fields);
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body,
    });
    const j = await r.json().catch(() => ({ error: "Latchkey could not start this step." }));
    if (!r.ok || j.error) throw new Error(j.error || "Latchkey could not start this step.");
    return j;
  }

  async function finish(ceremony, credential, name) {
    const r = await fetch("/webauthn/finish", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ceremony, credential, name }),
    });
    const j = await r.json().catch(() => ({ error: "Latchkey could not check this." }));
    if (!r.ok || j.error) throw new Error(j.error || "Latchkey could not check this.");
    window.location.assign(j.next);
  }

  function requestOptions(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = b64uToBuf(pk.challenge);
    pk.allowCredentials = (pk.allowCredentials || []).map((c) =>
      Object.assign({}, c, { id: b64uToBuf(c.id) }),
    );
    return pk;
  }

  function creationOptions(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = b64uToBuf(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: b64uToBuf(pk.user.id) });
    pk.excludeCredentials = (pk.excludeCredentials || []).map((c) =>
      Object.assign({}, c, { id: b64uToBuf(c.id) }),
    );
    return pk;
  }

  function assertionJson(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: bufToB64u(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: bufToB64u(r.authenticatorData),
        clientDataJSON: bufToB64u(r.clientDataJSON),
        signature: bufToB64u(r.signature),
        userHandle: r.userHandle ? bufToB64u(r.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }

  function attestationJson(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: bufToB64u(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: bufToB64u(r.attestationObject),
        clientDataJSON: bufToB64u(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }

  const failure = (e) =>
    e && e.name === "NotAllowedError"
      ? "The request was cancelled or timed out. Try again."
      : (e && e.message) || "Something went wrong. Try again.";

  // Sign-in page: a button, and passkeys offered in the email field's autofill.
  function setUpLogin(root) {
    if (!supported()) return;
    root.hidden = false;
    const fields = { flow: root.dataset.flow, csrf: root.dataset.csrf };
    let conditional = null;
    // Once the user chose (the button, or the password form), autofill stays out of the way.
    let chosen = false;
    const button = root.querySelector("#passkey-button");
    const form = document.getElementById("login-form");
    const choose = () => {
      chosen = true;
      if (conditional) conditional.abort();
    };
    if (form) form.addEventListener("submit", choose);
    button.addEventListener("click", async () => {
      choose();
      try {
        const b = await begin("/webauthn/login/begin", Object.assign({ mode: "modal" }, fields));
        const cred = await navigator.credentials.get({ publicKey: requestOptions(b.options) });
        await finish(b.ceremony, assertionJson(cred));
      } catch (e) {
        showError(root, failure(e));
      }
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(async (ok) => {
        if (!ok || chosen) return;
        conditional = new AbortController();
        try {
          const b = await begin("/webauthn/login/begin", Object.assign({ mode: "conditional" }, fields));
          if (chosen) return;
          const cred = await navigator.credentials.get({
            publicKey: requestOptions(b.options),
            mediation: "conditional",
            signal: conditional.signal,
          });
          await finish(b.ceremony, assertionJson(cred));
        } catch (e) {
          // Autofill is opportunistic: leaving the page or typing a password aborts it.
          if (e && e.name !== "AbortError") console.debug("passkey autofill ended", e);
        }
      });
    }
  }

  function setUpVerify(root) {
    const button = root.querySelector("#webauthn-verify-button");
    if (!supported()) {
      button.disabled = true;
      showError(root, "This browser does not support passkeys or security keys.");
      return;
    }
    button.addEventListener("click", async () => {
      try {
        const b = await begin("/webauthn/verify/begin", {
          flow: root.dataset.flow,
          csrf: root.dataset.csrf,
          need: root.dataset.need,
        });
        const cred = await navigator.credentials.get({ publicKey: requestOptions(b.options) });
        await finish(b.ceremony, assertionJson(cred));
      } catch (e) {
        showError(root, failure(e));
      }
    });
  }

  function setUpRegister(root) {
    const button = root.querySelector("[data-webauthn-register-button]");
    if (!supported()) {
      button.disabled = true;
      showError(root, "This browser does not support passkeys or security keys.");
      return;
    }
    button.addEventListener("click", async () => {
      const fields = { csrf: root.dataset.csrf, kind: root.dataset.kind };
      if (root.dataset.flow) fields.flow = root.dataset.flow;
      const nameInput = root.querySelector("[data-webauthn-name]");
      try {
        const b = await begin("/webauthn/register/begin", fields);
        const cred = await navigator.credentials.create({ publicKey: creationOptions(b.options) });
        await finish(b.ceremony, attestationJson(cred), nameInput ? nameInput.value : null);
      } catch (e) {
        showError(root, failure(e));
      }
    });
  }

  document.querySelectorAll("[data-webauthn-login]").forEach(setUpLogin);
  document.querySelectorAll("[data-webauthn-verify]").forEach(setUpVerify);
  document.querySelectorAll("[data-webauthn-register]").forEach(setUpRegister);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
    });
  });
})();
