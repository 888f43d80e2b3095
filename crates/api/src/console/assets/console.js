// mPanel console: the little the pages need beyond HTML and htmx.
(function () {
  "use strict";
  // A form sends once: its submit button is disabled while it is sent.
  document.addEventListener("submit", function (event) {
    var button = event.target.querySelector("button[type=submit]");
    if (button) {
      window.setTimeout(function () { button.disabled = true; }, 0);
    }
  });

  // Signing in with a passkey: the browser answers the server's
  // challenge, the answer goes back in the form.
  var passkey = document.getElementById("use-passkey");
  if (passkey) {
    passkey.addEventListener("click", function () {
      var form = document.getElementById("passkey-form");
      var options = JSON.parse(form.dataset.webauthn);
      var publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
      passkey.disabled = true;
      navigator.credentials.get({ publicKey: publicKey })
        .then(function (credential) {
          form.elements.webauthn_response.value = JSON.stringify(credential.toJSON());
          form.submit();
        })
        .catch(function () {
          passkey.disabled = false;
          var status = document.getElementById("passkey-status");
          status.textContent = "The passkey was not used. Try again, or enter a code.";
        });
    });
  }
})();
