// busloket — progressive enhancement for the pages. Everything works without this script;
// with it, the pages follow the node's server-sent events and the kiosk warns before it times out.
"use strict";
(function () {
  const body = document.body;

  // Move focus to the screen's title so screen readers announce the new step — or to the field
  // the screen asks to be corrected (marked data-focus), which describes its problem.
  const target = document.querySelector("main [data-focus]") || document.querySelector("main h1");
  if (body.classList.contains("kiosk") && target) { target.focus(); }

  // Redraw the live parts of the page when the node says something changed.
  const eventsUrl = body.dataset.events;
  // Once the person submits a form, the answer is a new page: a redraw now would load the old
  // one over it, so stop listening.
  let leaving = false;
  if (eventsUrl && window.EventSource) {
    const source = new EventSource(eventsUrl);
    let pending = null;
    const stop = () => { leaving = true; clearTimeout(pending); source.close(); };
    document.addEventListener("submit", stop, true);
    window.addEventListener("pagehide", stop);
    source.addEventListener("changed", () => {
      if (pending || leaving) { return; }
      pending = setTimeout(() => { pending = null; if (!leaving) { redraw(); } }, 150);
    });
  }

  async function redraw() {
    const live = document.querySelectorAll("[data-live]");
    if (live.length === 0) { window.location.reload(); return; }
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) { return; }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      live.forEach((element) => {
        const replacement = fresh.getElementById(element.id);
        if (replacement && !element.contains(document.activeElement)) {
          element.innerHTML = replacement.innerHTML;
        }
      });
      const status = document.getElementById("live-status");
      if (status) { status.textContent = new Date().toLocaleTimeString(); }
    } catch (_) { /* the next event tries again */ }
  }

  // Kiosk: after the idle time, ask "are you still there?"; a minute later, end the session.
  const idleSeconds = Number(body.dataset.idleSeconds || 0);
  const idleEnd = body.dataset.idleEnd;
  const dialog = document.getElementById("idle-warning");
  if (idleSeconds > 0 && idleEnd && dialog) {
    let warnTimer, endTimer;
    const arm = () => {
      clearTimeout(warnTimer); clearTimeout(endTimer);
      warnTimer = setTimeout(() => {
        dialog.hidden = false;
        document.getElementById("idle-continue").focus();
        endTimer = setTimeout(() => {
          const form = document.createElement("form");
          form.method = "post"; form.action = idleEnd;
          document.body.appendChild(form); form.submit();
        }, 60000);
      }, idleSeconds * 1000);
    };
    document.getElementById("idle-continue").addEventListener("click", () => {
      dialog.hidden = true;
      fetch(idleEnd.replace(/\/end$/, "/touch"), { method: "POST", credentials: "same-origin" });
      arm();
    });
    ["pointerdown", "keydown"].forEach((name) => document.addEventListener(name, () => { if (dialog.hidden) { arm(); } }));
    arm();
  }
})();
