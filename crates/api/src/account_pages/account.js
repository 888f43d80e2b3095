// The invitation and password-reset pages: the token stays in the
// fragment (never sent to a server by the browser); the password goes to
// the API this page came from.
(function () {
  "use strict";
  var main = document.querySelector("main");
  var form = document.getElementById("set-password");
  var outcome = document.getElementById("outcome");
  var token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  // Out of the address bar (and the history) once read.
  history.replaceState(null, "", window.location.pathname);

  function say(text, failed) {
    outcome.textContent = text;
    outcome.className = failed ? "error" : "";
  }

  if (!token) {
    form.hidden = true;
    say("This link is incomplete: open it again from the e-mail.", true);
    return;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var password = form.password.value;
    if (password !== form.confirm.value) {
      say("The two passwords differ.", true);
      return;
    }
    form.querySelector("button").disabled = true;
    fetch(main.dataset.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: token, password: password }),
    })
      .then(function (res) {
        return res.json().then(function (body) {
          return { ok: res.ok, body: body };
        });
      })
      .then(function (answer) {
        if (answer.ok) {
          form.hidden = true;
          say("Your password is set. Sign in as " + answer.body.email + ".", false);
          var next = document.getElementById("next");
          next.querySelector("a").href = "/sign-in?" + new URLSearchParams(
            { tenant: answer.body.tenant, email: answer.body.email }).toString();
          next.hidden = false;
        } else {
          form.querySelector("button").disabled = false;
          say(answer.body.detail || "That did not work; try again.", true);
        }
      })
      .catch(function () {
        form.querySelector("button").disabled = false;
        say("The server could not be reached; try again.", true);
      });
  });
})();
