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

  // Paying by card: Stripe's payment element takes the card (it never
  // reaches this page's code), Stripe confirms, then sends the browser
  // back to the invoice, which waits for Stripe's webhook.
  var card = document.getElementById("card-payment");
  if (card) {
    var status = document.getElementById("card-status");
    var button = card.querySelector("button[type=submit]");
    var unavailable = function () {
      status.textContent = "Card payments cannot be taken right now. Please try again in a few minutes.";
      button.disabled = true;
    };
    var stripe = null;
    var elements = null;
    try {
      stripe = window.Stripe(card.dataset.publishableKey);
      elements = stripe.elements({ clientSecret: card.dataset.clientSecret });
      elements.create("payment").mount("#payment-element");
    } catch (e) {
      stripe = null;
    }
    if (!stripe) {
      unavailable();
    } else {
      var back = new URL(card.dataset.returnPath, window.location.href).toString();
      card.addEventListener("submit", function (event) {
        event.preventDefault();
        status.textContent = "Paying…";
        stripe.confirmPayment({ elements: elements, confirmParams: { return_url: back } })
          .then(function (result) {
            if (result.error) {
              status.textContent = result.error.message || "The card was not accepted.";
              button.disabled = false;
            }
          })
          .catch(function () {
            status.textContent = "The payment could not be sent. Please try again.";
            button.disabled = false;
          });
      });
    }
  }
})();
