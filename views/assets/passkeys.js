// Passkey ceremonies on Gatehouse's pages, with @simplewebauthn/browser (served by Gatehouse at
// /assets/webauthn/, loaded before this file). Every form here works the same way: ask the
// server for WebAuthn options (a POST carrying the form's token), let the browser talk to the
// authenticator, put its answer in the form's `response` field, and submit the form as a plain
// POST, so the server's redirect or error page follows as for any other form. Without this
// script (or WebAuthn) the passkey buttons stay hidden and the password forms work as they are.
//
//   form[data-passkey="sign-in"]  a button starts a passwordless sign-in (or the second step);
//                                 with data-autofill, passkeys are also offered in the email
//                                 field's autofill (conditional mediation)
//   form[data-passkey="register"] submitting it adds a passkey (the account page), or sets one up
//                                 instead of a password (the invitation page; data-options-fields)
(function () {
  'use strict';
  var lib = window.SimpleWebAuthnBrowser;
  var supported = Boolean(lib && lib.browserSupportsWebAuthn());

  /** Shows the form's message for `code` (its data-error-* attributes hold the page's words). */
  function showError(form, code) {
    var box = document.getElementById(form.getAttribute('data-error-target'));
    if (!box) return;
    box.textContent = form.getAttribute('data-error-' + code) || form.getAttribute('data-error-server') || '';
    box.hidden = false;
  }

  /** The server's options for this form, or a rejection whose `code` names the refusal. */
  function fetchOptions(form, fields) {
    var body = new URLSearchParams(fields || {});
    body.set('csrf_token', form.elements.csrf_token.value);
    return fetch(form.getAttribute('data-options-url'), { method: 'POST', body: body, credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) throw Object.assign(new Error('refused'), { code: (json && json.error) || 'server' });
        return json;
      });
    });
  }

  function submitWith(form, credential) {
    form.elements.response.value = JSON.stringify(credential);
    form.submit();
  }

  /** A ceremony the person cancelled, or one a newer ceremony replaced. */
  function codeOf(error) {
    if (error && error.code && /^[a-z_]+$/.test(error.code) && error.code.indexOf('ERROR_') !== 0) return error.code;
    return error && (error.name === 'NotAllowedError' || error.name === 'AbortError' || (error.cause && error.cause.name === 'NotAllowedError')) ? 'cancelled' : 'server';
  }

  function setUpSignIn(form) {
    var button = form.querySelector('[data-passkey-start]');
    button.hidden = false;
    button.addEventListener('click', function () {
      fetchOptions(form)
        .then(function (options) { return lib.startAuthentication({ optionsJSON: options }); })
        .then(function (credential) { submitWith(form, credential); })
        .catch(function (error) { showError(form, codeOf(error)); });
    });
    if (form.hasAttribute('data-autofill')) {
      lib.browserSupportsWebAuthnAutofill().then(function (autofill) {
        if (!autofill) return;
        fetchOptions(form)
          .then(function (options) { return lib.startAuthentication({ optionsJSON: options, useBrowserAutofill: true }); })
          .then(function (credential) { submitWith(form, credential); })
          // Autofill ends quietly when the person uses the button or the password form instead.
          .catch(function () {});
      });
    }
  }

  function setUpRegister(form) {
    var button = form.querySelector('[data-passkey-start]');
    button.hidden = false;
    form.addEventListener('submit', function (event) {
      // Without a name the server says so; nothing to ask the authenticator yet.
      if (!form.elements.name.value.trim()) return;
      event.preventDefault();
      var password = form.elements.password;
      var fields = { password: password ? password.value : '' };
      // data-options-fields names more of the form's fields the server needs for its options (the invitation's token).
      (form.getAttribute('data-options-fields') || '').split(' ').forEach(function (name) {
        if (name && form.elements[name]) fields[name] = form.elements[name].value;
      });
      fetchOptions(form, fields)
        .then(function (options) { return lib.startRegistration({ optionsJSON: options }); })
        .then(function (credential) {
          // The options were the proof of identity; the password is not sent again.
          if (password) password.value = '';
          submitWith(form, credential);
        })
        .catch(function (error) { showError(form, codeOf(error)); });
    });
  }

  var forms = document.querySelectorAll('form[data-passkey]');
  for (var i = 0; i < forms.length; i++) {
    var form = forms[i];
    if (!supported) {
      var note = form.querySelector('[data-passkey-unsupported]');
      if (note) note.hidden = false;
      continue;
    }
    if (form.getAttribute('data-passkey') === 'register') setUpRegister(form);
    else setUpSignIn(form);
  }
})();
