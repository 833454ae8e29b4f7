/* Seatwise: the little behaviour the server-rendered pages need.
   Loaded with `defer` right after htmx (also deferred), so it runs after htmx is defined and
   before htmx initialises the page on DOMContentLoaded: config set here is in force from the
   first request. No inline scripts or handlers anywhere (strict CSP). */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  /* ------------------------------------------------------------ htmx configuration */
  if (window.htmx) {
    var config = window.htmx.config;
    // Forms with errors answer 422 and must be swapped; other 4xx/5xx are not swapped
    // (htmx:responseError below tells the user instead).
    config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "422", swap: true },
      { code: "[45]..", swap: false, error: true }
    ];
    config.includeIndicatorStyles = false; // htmx would inject a <style>; ours live in app.css
    config.allowEval = false;              // no hx-on / js: / eval under CSP
    config.allowScriptTags = false;        // swapped fragments never run scripts
    // Pages hold client data (leads, phone numbers): keep no copies in localStorage, and let a
    // history miss fetch the full page rather than a partial (the server varies on HX-Request).
    config.historyCacheSize = 0;
    config.historyRestoreAsHxRequest = false;
  }

  /* ------------------------------------------------------------ confirmations (data-confirm) */
  function confirmText(el, submitter) {
    if (submitter && submitter.hasAttribute("data-confirm")) return submitter.getAttribute("data-confirm");
    return el && el.hasAttribute && el.hasAttribute("data-confirm") ? el.getAttribute("data-confirm") : null;
  }

  function isHtmxForm(form) {
    if (!window.htmx) return false;
    if (form.matches("[hx-post],[hx-get],[hx-put],[hx-patch],[hx-delete],[data-hx-post],[data-hx-get],[data-hx-put],[data-hx-patch],[data-hx-delete]")) return true;
    var boost = form.closest("[hx-boost],[data-hx-boost]");
    return !!boost && (boost.getAttribute("hx-boost") || boost.getAttribute("data-hx-boost")) === "true";
  }

  // htmx-driven elements: htmx asks before issuing the request.
  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail.triggeringEvent;
    var message = confirmText(event.detail.elt, trigger && trigger.submitter);
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Plain forms (capture phase, so a refusal stops the submission before anyone else sees it).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (isHtmxForm(form)) return;
    var message = confirmText(form, event.submitter);
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* ------------------------------------------------------------ dismissible alerts, auto-submit */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (button) {
      var box = button.closest("[data-dismissible], .alert");
      if (box) box.remove();
    }
    // Close open dropdown menus (<details data-menu>) when clicking elsewhere.
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) summary.focus();
    });
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (!el.matches || !el.matches("select[data-autosubmit]") || !el.form) return;
    if (el.form.requestSubmit) el.form.requestSubmit(); // fires submit: htmx and confirmations see it
    else el.form.submit();
  });

  /* ------------------------------------------------------------ bars sized by data-pct */
  // CSSOM writes are allowed under CSP (only style="" markup is not).
  function applyPercentages(root) {
    if (!root || !root.querySelectorAll) return;
    var nodes = Array.prototype.slice.call(root.querySelectorAll("[data-pct]"));
    if (root.hasAttribute && root.hasAttribute("data-pct")) nodes.push(root);
    nodes.forEach(function (node) {
      var pct = parseFloat(node.getAttribute("data-pct"));
      if (!isFinite(pct)) pct = 0;
      node.style.setProperty("--pct", String(Math.max(0, Math.min(100, pct))));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    applyPercentages(document.body);
    // On phones the tab row scrolls sideways: bring the current tab into view.
    var tab = document.querySelector(".tabs-list [aria-current='page']");
    var list = tab && tab.closest(".tabs-list");
    if (list && list.scrollWidth > list.clientWidth) {
      list.scrollLeft = tab.offsetLeft - (list.clientWidth - tab.offsetWidth) / 2;
    }
  });
  document.addEventListener("htmx:load", function (event) { applyPercentages(event.detail.elt); });

  /* ------------------------------------------------------------ tables that scroll */
  // A table wider (or taller) than its box scrolls. With nothing focusable inside, a keyboard
  // user could not scroll it: such a box becomes a focusable region named after its table.
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  function tableName(wrap) {
    var caption = wrap.querySelector("caption");
    var card = wrap.closest(".card, section");
    var heading = card && card.querySelector("h2, h3, .card-title");
    var text = (caption || heading || document.querySelector("h1") || {}).textContent || "";
    return (text.trim() || "Table") + " (scrolls)";
  }
  function hasFocusable(wrap) {
    return Array.prototype.some.call(wrap.querySelectorAll(FOCUSABLE), function (el) {
      return el.tabIndex >= 0 && el.getClientRects().length > 0; // shown, in the tab order
    });
  }
  function keyboardScrolling() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth || wrap.scrollHeight > wrap.clientHeight;
      var needed = scrolls && !hasFocusable(wrap);
      if (needed && !wrap.hasAttribute("data-scroll-region")) {
        wrap.setAttribute("data-scroll-region", "");
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", tableName(wrap));
      } else if (!needed && wrap.hasAttribute("data-scroll-region")) {
        ["data-scroll-region", "tabindex", "role", "aria-label"].forEach(function (name) {
          wrap.removeAttribute(name);
        });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", keyboardScrolling);
  document.addEventListener("htmx:load", keyboardScrolling);
  window.addEventListener("resize", keyboardScrolling); // at most once a frame

  /* ------------------------------------------------------------ failed htmx requests */
  // A 4xx/5xx is not swapped (see responseHandling), so say something in the flash region.
  var FAILURES = {
    403: "You don't have permission to do that.",
    404: "That item no longer exists. Reload the page to see the latest.",
    409: "Someone else changed this meanwhile. Reload the page and try again.",
    413: "That was too large to send. Split it into smaller parts and try again.",
    429: "Too many requests. Please wait a moment and try again.",
    400: "This form has expired. Reload the page and try again."
  };
  function showFailure(text) {
    var region = document.getElementById("flash");
    if (!region) return;
    var alert = document.createElement("div");
    alert.className = "alert alert--error";
    var body = document.createElement("div");
    body.className = "alert-body";
    body.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "alert-close";
    close.setAttribute("data-dismiss", "");
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    alert.append(body, close);
    region.replaceChildren(alert);
    if (region.getBoundingClientRect().top < 0) region.scrollIntoView({ block: "start" });
  }
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    showFailure(FAILURES[status] || "Something went wrong on our side. Please try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showFailure("Could not reach Seatwise. Check your connection and try again.");
  });
})();

/* Live regions ([data-poll]) poll only while the tab is visible, and catch up at once when
   it becomes visible again (their hx-trigger listens for "sw:visible" on document). */
(function () {
  "use strict";
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && event.detail.elt.hasAttribute("data-poll")) event.preventDefault();
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) document.dispatchEvent(new CustomEvent("sw:visible"));
  });
})();
