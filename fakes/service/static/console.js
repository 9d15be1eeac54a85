// The sandbox console: live updates by polling, buttons that call the control API.
// No framework, no build step: this file is served as it is (fakes/service/static/).
(function () {
  "use strict";
  var version = document.body.getAttribute("data-version");
  var live = document.getElementById("live");

  function say(text, failed) {
    var box = document.getElementById("message");
    if (!box) return;
    box.textContent = text;
    box.className = failed ? "failed" : "done";
  }

  function refresh() {
    return fetch(location.href, { headers: { "X-Console-Fragment": "1" }, credentials: "same-origin" })
      .then(function (answer) { return answer.text(); })
      .then(function (text) {
        var main = document.getElementById("main");
        var message = document.getElementById("message");
        var kept = message ? message.textContent : "";
        main.innerHTML = text;
        if (kept) say(kept);
      });
  }

  function busy() {
    // Never swap the page under someone typing in one of its forms.
    var focused = document.activeElement;
    return focused && focused.closest && focused.closest("#main form") !== null &&
      (focused.tagName === "INPUT" || focused.tagName === "SELECT");
  }

  function poll() {
    fetch("/control/version", { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.json(); })
      .then(function (body) {
        live.className = "on";
        if (String(body.version) !== String(version) && !busy()) {
          version = body.version;
          return refresh();
        }
      })
      .catch(function () { live.className = "off"; })
      .then(function () { setTimeout(poll, 1000); });
  }

  function call(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (answer) {
      return answer.json().then(function (payload) {
        if (!answer.ok) throw new Error((payload.error && payload.error.message) || answer.status);
        return payload;
      });
    });
  }

  function done(payload) {
    var text = "Done.";
    if (payload && payload.trigger) text = payload.trigger + ": " + payload.events.map(function (e) { return e.type; }).join(", ");
    else if (payload && payload.iso) text = "Sandbox time is now " + payload.iso;
    else if (payload && payload.status && payload.event) text = "Redelivery queued for " + payload.event;
    say(text);
    return refresh().then(function () { say(text); });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-post]");
    if (!target) return;
    var question = target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    var body = target.getAttribute("data-body");
    call(target.getAttribute("data-method") || "POST", target.getAttribute("data-post"), body ? JSON.parse(body) : {})
      .then(done, function (error) { say(error.message, true); });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-form]");
    if (!form) return;
    event.preventDefault();
    var body = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name) return;
      body[field.name] = field.type === "number" ? Number(field.value) : field.value;
    });
    call("POST", form.getAttribute("data-form"), body)
      .then(done, function (error) { say(error.message, true); });
  });

  document.addEventListener("change", function (event) {
    var box = event.target.closest("[data-patch]");
    if (!box) return;
    call("PATCH", box.getAttribute("data-patch"), { completed: box.checked })
      .then(done, function (error) { say(error.message, true); });
  });

  setTimeout(poll, 1000);
})();
