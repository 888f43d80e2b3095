// The fake's Stripe.js: Stripe(pk), elements({clientSecret}),
// create("payment").mount(target), confirmPayment({elements,
// confirmParams: {return_url}}). The payment element is a card-number
// field taking Stripe's test cards.
(function () {
  "use strict";
  var CARDS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds"
  };
  var origin = new URL(document.currentScript.src).origin;

  function integrationError(message) {
    var e = new Error(message);
    e.name = "IntegrationError";
    return e;
  }

  function Stripe(key) {
    if (!/^pk_(test|live)_./.test(key || "")) {
      throw integrationError("Invalid value for Stripe(): apiKey should be a publishable key (pk_...).");
    }
    return {
      elements: function (options) {
        var secret = options && options.clientSecret;
        if (!secret) {
          throw integrationError("In order to create a payment element, you must pass a clientSecret or mode when creating the Elements group.");
        }
        var field = null;
        return {
          clientSecret: secret,
          create: function (type) {
            if (type !== "payment") {
              throw integrationError("The fake knows only the payment element.");
            }
            return {
              mount: function (target) {
                var host = typeof target === "string" ? document.querySelector(target) : target;
                var label = document.createElement("label");
                label.textContent = "Card number";
                label.htmlFor = "stripe-card-number";
                field = document.createElement("input");
                field.id = "stripe-card-number";
                field.autocomplete = "cc-number";
                field.inputMode = "numeric";
                host.appendChild(label);
                host.appendChild(field);
              }
            };
          },
          cardNumber: function () {
            return field ? field.value.replace(/\s+/g, "") : "";
          }
        };
      },
      confirmPayment: function (args) {
        var elements = args.elements;
        var returnUrl = args.confirmParams && args.confirmParams.return_url;
        if (!returnUrl) {
          return Promise.reject(integrationError("confirmPayment(): the `confirmParams.return_url` argument is required."));
        }
        var method = CARDS[elements.cardNumber()];
        if (!method) {
          return Promise.resolve({ error: { type: "validation_error", code: "invalid_number", message: "Your card number is invalid." } });
        }
        var secret = elements.clientSecret;
        var id = secret.split("_secret_")[0];
        var body = new URLSearchParams({ key: key, client_secret: secret, payment_method: method, return_url: returnUrl });
        return fetch(origin + "/v1/payment_intents/" + encodeURIComponent(id) + "/confirm", { method: "POST", body: body })
          .then(function (res) { return res.json(); })
          .then(function (answer) {
            if (answer.error) {
              return { error: answer.error };
            }
            var back = new URL(returnUrl);
            back.searchParams.set("payment_intent", answer.id);
            back.searchParams.set("payment_intent_client_secret", secret);
            back.searchParams.set("redirect_status", answer.status);
            window.location.assign(back.toString());
            // As Stripe.js: the promise stays pending while the page leaves.
            return new Promise(function () {});
          });
      }
    };
  }

  window.Stripe = Stripe;
})();
