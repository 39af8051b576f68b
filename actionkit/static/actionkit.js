/*! actionkit.js | the browser side of actionkit's action protocol (version 1) | BSD-3-Clause
 *
 * Forms that name an action (a `$ACTION_ID_<id>` field, or a submit button with such a name) are
 * sent in the background instead of navigating; the answer carries the action's result and the
 * page rendered after it, which is morphed into the document with idiomorph (what the user
 * changed in the page's controls stays; a redirect's target with scripts of its own is loaded
 * instead). Without this script
 * the same forms still work as plain HTML forms: the server answers with a 303 or the page.
 *
 * Loaded by `actionkit_script()` (actionkit.jinja) after idiomorph.js, and configured from its
 * <script> tag: `data-actions` is the JSON table of exposed actions,
 * `{"name": {"id": "...", "token": "..."}}`. Defines one global, `actionkit`.
 *
 * Markup it understands:
 *   form[data-concurrency="queue|abort|drop"]  what a submission does while one is pending
 *   form[data-reset="false"]                   keep the values after a successful submission
 *   button[data-pending-text="Saving…"]        the submitter's label while pending
 *   [data-optimistic="field"]                  shows the submitted value of `field` at once:
 *                                              inside the form, or anywhere with
 *                                              data-optimistic-for="<form id>"
 *   progress[data-upload-progress]             inside the form: upload progress of its files
 *   [data-action-error]                        inside the form: the message of an error answer
 *                                              (made when missing; cancel actionkit:error to
 *                                              show errors your own way)
 *   meta[name="csrf-token"]                    its content is sent as X-CSRFToken
 *   [data-action-call="name or id"]            a call without a form:
 *                                              data-trigger="click|load|visible",
 *                                              data-args='[1, "two"]', data-target="#selector";
 *                                              busy while pending, as a submitter is
 * Events, dispatched on the form (or the calling element) and bubbling:
 *   actionkit:result   detail = the answer ({result, failed, redirect, html, url, revalidated})
 *   actionkit:error    detail = {error, status, answer}
 *   actionkit:progress detail = {loaded, total}
 */
(() => {
  "use strict";

  // -- the protocol: the names of actionkit/protocol.py (tests/test_protocol_js.py compares) --

  const PROTOCOL_VERSION = 1;
  const ACTION_ID_HEADER = "Action-Id";
  const ACTION_BOUND_HEADER = "Action-Bound";
  const ACTION_PAGE_HEADER = "Action-Page";
  const ACTION_FIELD_PREFIX = "$ACTION_ID_";
  const UNKNOWN_ACTION = "unknown_action";
  const ACTION_FAILED = "action_failed";

  // sessionStorage key remembering when the page was last reloaded for an unknown action.
  const RELOAD_KEY = "actionkit:reloaded-at";
  // Within this many milliseconds of that reload, do not reload again (no reload loops).
  const RELOAD_GUARD_MS = 10000;
  // Shown in a form whose request got no answer (offline, the connection lost).
  const NO_ANSWER =
    "No answer from the server (the action may or may not have run): " +
    "check the page, then try again.";
  const CONCURRENCY_MODES = ["queue", "abort", "drop"];
  // Inputs without a value the user types or picks.
  const UNTYPED = ["file", "hidden", "submit", "button", "reset", "image"];
  // A form's fields shadow its properties (a field named "elements" is form.elements): those a
  // field may well be named after (action, id, elements, dataset, reset, requestSubmit) are
  // read with getAttribute or from the prototype.
  const ELEMENTS = Object.getOwnPropertyDescriptor(HTMLFormElement.prototype, "elements").get;

  // Loading the script twice must not submit every form twice. (An element with
  // id="actionkit" also shows up as window.actionkit: that one does not count.)
  if (window.actionkit && typeof window.actionkit.call === "function") {
    console.warn("actionkit.js is loaded twice; the second copy does nothing.");
  } else {
    // currentScript is null when the script was bundled or moved: look for its tag then.
    const script = document.currentScript || document.querySelector("script[data-actions]");
    window.actionkit = start(script ? script.dataset : {});
  }

  function start(config) {
    let exposed = parseExposed(config.actions);

    function parseExposed(json) {
      try {
        const table = JSON.parse(json || "{}");
        if (table && typeof table === "object") return table;
      } catch (error) {
        console.error("actionkit: data-actions is not valid JSON", error);
      }
      return {};
    }

    // Per-form bookkeeping: {sent, applied, pending, controllers, queue}.
    let forms = new WeakMap();
    // Elements shown as pending (forms, submitters, declarative call elements), with how many
    // submissions keep them so and how to undo it.
    const busy = new Map();
    // Declarative calls: the page each load-triggered element last ran for; observed elements.
    const loadedFor = new WeakMap();
    const observed = new WeakSet();
    let observer = null;
    // The path of the page the document shows; differs from location after a history move.
    let shownPath = pagePath();
    let navigated = false;
    // This document's history entries are marked as actionkit's ({actionkit: {doc, path}}):
    // a move back or forward to one that shows another page loads it (see popstate).
    const docId = Math.random().toString(36).slice(2);
    if (history.state === null || typeof history.state === "object") {
      history.replaceState(mark(history.state, shownPath), "");
    }
    // Answers carrying a page, in the order their requests were sent, across every form and
    // call: a page rendered before another action ran never replaces the page after it.
    let sentAll = 0;
    let shownAll = 0;
    // The state of each control and <details> as the server rendered it (on load, and after
    // each morph): what the user changed differs from it, and is kept by a morph.
    const served = new WeakMap();
    // Whether the server rendered each <dialog> open (on load, and after each morph). One the
    // user opened (or closed) stays so through a morph of the same page (`keep`); the dialog of
    // a form whose action succeeded closes (a modal closes once saved: see submit).
    const dialogServed = new WeakMap();
    const dialogs = { keep: true };
    for (const d of document.querySelectorAll("dialog")) {
      dialogServed.set(d, d.hasAttribute("open"));
    }
    // The names of the attributes of <html> on the page last morphed in. None at first: on the
    // page as loaded, those the server rendered cannot be told from those a script set.
    let rootServed = [];
    // Once the browser starts to load another document (a link followed, a form posted without
    // this script, the address bar, another answer's redirect), the answers of the requests sent
    // before are not applied: as without JavaScript, where the page being left drops the answer
    // of its form, the page the user went to is not replaced by a late redirect. Listened for
    // only while a request is under way: a beforeunload listener keeps some browsers from
    // keeping the page in their back/forward cache.
    let leftAt = 0;
    let underWay = 0;
    function leaving(event) {
      // A page that asks before it is left (a listener of its own, run before this one,
      // cancelled the event) may stay: the answers are still applied then.
      const asks = event.defaultPrevented || (event.returnValue && event.returnValue !== true);
      if (!asks) leftAt = sentAll;
    }
    function started() {
      if (underWay++ === 0) window.addEventListener("beforeunload", leaving);
    }
    function ended() {
      if (--underWay === 0) window.removeEventListener("beforeunload", leaving);
    }

    function pagePath() {
      return location.pathname + location.search;
    }

    class ActionError extends Error {
      constructor(message, { status = 0, code = "network", answer = null } = {}) {
        super(message);
        this.name = "ActionError";
        this.status = status;
        this.code = code;
        this.answer = answer;
        // The data given to fail(), for a failed call.
        this.data = isAnswerLike(answer) ? answer.result : undefined;
      }
    }

    // -- talking to the server ----------------------------------------------------------------

    // XMLHttpRequest rather than fetch: only it reports upload progress.
    function send(url, headers, body, { signal = null, onProgress = null } = {}) {
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.addEventListener("loadend", ended);
        xhr.open("POST", url);
        for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
        xhr.setRequestHeader("Accept", "application/json");
        // A framework's CSRF token, for CSRF protection that also checks action requests
        // (Flask-WTF's CSRFProtect, which reads X-CSRFToken).
        const csrf = document.querySelector('meta[name="csrf-token"]');
        if (csrf && csrf.content) xhr.setRequestHeader("X-CSRFToken", csrf.content);
        if (onProgress) {
          xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.total));
        }
        xhr.addEventListener("load", () => {
          let answer = null;
          try {
            answer = JSON.parse(xhr.responseText);
          } catch (_) {
            // Not our answer (a proxy's error page): the caller reports it by its status.
          }
          resolve({ status: xhr.status, answer });
        });
        xhr.addEventListener("error", () => reject(new ActionError("Network error")));
        xhr.addEventListener("abort", () => reject(new DOMException("Aborted", "AbortError")));
        if (signal) {
          if (signal.aborted) return reject(new DOMException("Aborted", "AbortError"));
          signal.addEventListener("abort", () => xhr.abort());
        }
        started();
        xhr.send(body);
      });
    }

    function isAnswerLike(answer) {
      return answer !== null && typeof answer === "object" && "result" in answer;
    }

    // A usable answer has a result; anything else (an error object, a proxy's page) is an error.
    function isAnswer(answer) {
      return isAnswerLike(answer) && !answer.error;
    }

    // An action that raised answers only a digest, which finds its logged traceback: the
    // message gives it as the page without JavaScript does.
    function errorOf(status, answer) {
      const error = answer && answer.error ? answer.error : {};
      const code = error.code || "http_" + status;
      if (code === UNKNOWN_ACTION) reloadOnce();
      // debug=True: the server sent the traceback; the developer finds it in the console.
      if (error.traceback) console.error("actionkit: the action raised\n" + error.traceback);
      const message =
        code === ACTION_FAILED && error.digest
          ? "The action failed. Reference: " + error.digest + "."
          : "The action failed (" + code + ").";
      return new ActionError(error.message || message, {
        status,
        code,
        answer,
      });
    }

    // After a deploy the page may name actions the server no longer has: load the page again
    // to get the new IDs, but only once in a while, so a page that is wrong does not loop.
    function reloadOnce() {
      // Never over what the user typed: the error is shown instead (Back-style safety).
      for (const el of document.querySelectorAll(KEPT)) {
        const state = stateOf(el);
        if (state !== null && served.has(el) && served.get(el) !== state) return;
      }
      try {
        const last = Number(sessionStorage.getItem(RELOAD_KEY) || 0);
        if (Date.now() - last < RELOAD_GUARD_MS) return;
        sessionStorage.setItem(RELOAD_KEY, String(Date.now()));
      } catch (_) {
        return; // no storage to guard with: do not risk a loop
      }
      location.reload();
    }

    // -- applying an answer -------------------------------------------------------------------

    function morph(html, { navigation = false, keep = true } = {}) {
      const doc =
        typeof html === "string" ? new DOMParser().parseFromString(html, "text/html") : html;
      if (doc.querySelector("title")) document.title = doc.title;
      // Named <meta> tags are the page's too: a CSRF token rotated by a sign-in, above all.
      // (One per name and media: theme-color has one per color scheme.)
      const metaKey = (m) => `${m.getAttribute("name")}\u0000${m.getAttribute("media") || ""}`;
      const metas = new Map();
      for (const m of document.head.querySelectorAll("meta[name]")) metas.set(metaKey(m), m);
      for (const meta of doc.head.querySelectorAll("meta[name]")) {
        const mine = metas.get(metaKey(meta));
        if (!mine) document.head.append(document.importNode(meta, true));
        else if (mine.getAttribute("content") !== meta.getAttribute("content")) {
          mine.setAttribute("content", meta.getAttribute("content") || "");
        }
      }
      // The actions the new page exposes (a redirect's target exposes its own).
      const table = doc.querySelector("script[data-actions]");
      if (table) exposed = parseExposed(table.dataset.actions);
      // What the user changed stays, on the page they changed it on (not on another page).
      const restoreChanged = keep ? keepChanged() : () => {};
      // Attributes of <html> (a theme, the language) belong to the page too: those the server
      // renders follow it, those the page's scripts set (a theme read from storage, class="js")
      // stay. Only an attribute the server rendered on the page before is removed.
      const root = document.documentElement;
      const rendered = doc.documentElement;
      for (const name of rootServed) if (!rendered.hasAttribute(name)) root.removeAttribute(name);
      for (const { name, value } of rendered.attributes) {
        if (root.getAttribute(name) !== value) root.setAttribute(name, value);
      }
      rootServed = rendered.getAttributeNames();
      const x = window.scrollX;
      const y = window.scrollY;
      if (window.Idiomorph) {
        dialogs.keep = keep;
        try {
          morphInto(document.body, doc.body);
        } finally {
          dialogs.keep = true;
        }
      } else {
        // idiomorph failed to load: still show the new page, only less smoothly.
        console.warn("actionkit: idiomorph is missing; replacing the page body instead");
        document.body.replaceWith(document.adoptNode(doc.body));
        noteServed(document.body);
      }
      restoreChanged();
      if (!navigation) window.scrollTo(x, y);
      // The morph set the server's attributes: show what is still pending as pending again.
      for (const [el, entry] of busy) if (el.isConnected) showBusy(el, entry);
      wireCalls(document);
    }

    // Morphs `fresh`, an element of a parsed answer, into `old`, then notes what the server
    // rendered there. ignoreActiveValue keeps what the user is typing in the focused control;
    // restoreFocus keeps focus and caret.
    function morphInto(old, fresh) {
      const focused = document.activeElement;
      let rendered = null;
      // Only a control's value is the user's: a focused link or region still gets its content.
      const holdsValue =
        focused instanceof HTMLInputElement ||
        focused instanceof HTMLTextAreaElement ||
        focused instanceof HTMLSelectElement ||
        (focused instanceof HTMLElement && focused.isContentEditable);
      window.Idiomorph.morph(old, fresh, {
        morphStyle: "outerHTML",
        ignoreActiveValue: holdsValue,
        restoreFocus: true,
        callbacks: {
          beforeAttributeUpdated: (name, el, kind) => {
            if (name !== "open" || !(el instanceof HTMLDialogElement)) return true;
            // A <dialog> the user opened (showModal) or closed stays so (see dialogServed).
            const served = Boolean(dialogServed.get(el));
            if (dialogs.keep && (kind === "remove" ? el.open && !served : !el.open && served)) {
              return false;
            }
            if (kind !== "remove" || !el.open) return true;
            el.close(); // not the attribute alone: a modal would leave the page inert
            return false;
          },
          // A dialog the morph inserts is as the server rendered it (a notice shown open).
          afterNodeAdded: (node) => {
            if (!(node instanceof Element)) return;
            for (const d of [node, ...node.querySelectorAll("dialog")]) {
              if (d instanceof HTMLDialogElement) dialogServed.set(d, d.hasAttribute("open"));
            }
          },
          afterNodeMorphed: (node, model) => {
            if (node === focused) rendered = stateOf(model);
            if (node instanceof HTMLDialogElement) {
              dialogServed.set(node, model.hasAttribute("open"));
            }
          },
        },
      });
      if (old.isConnected) noteServed(old, focused, rendered);
    }

    // Adds the style sheets of `doc` (the page rendered again at the same URL) the document
    // lacks; none is removed (the page may still show what it styled), and inline <style>s,
    // which may differ on every render, are left alone.
    function addStyles(doc) {
      const hrefs = (root) =>
        [...root.querySelectorAll("link[rel~='stylesheet'][href]")].map((el) => el.href);
      const mine = new Set(hrefs(document));
      for (const el of doc.head.querySelectorAll("link[rel~='stylesheet'][href]")) {
        if (!mine.has(el.href)) document.head.append(document.importNode(el, true));
      }
    }

    // Whether the document already has every script and style sheet of `doc`: a page that
    // needs others (a redirect's target with scripts of its own) is loaded instead of morphed.
    function sameAssets(doc) {
      const assets = (root) =>
        new Set(
          [...root.querySelectorAll("script, link[rel~='stylesheet'], style")].map((el) =>
            el.matches("script[data-actions]")
              ? "actionkit"
              : el.getAttribute("src") || el.getAttribute("href") || el.textContent.trim(),
          ),
        );
      const mine = assets(document);
      return [...assets(doc)].every((asset) => mine.has(asset));
    }

    // What the user changed in the page's controls and <details> (a value typed, a box ticked,
    // an option chosen, a section opened) survives a morph, as React keeps the state of
    // uncontrolled inputs; what they did not change follows the server.
    function keepChanged() {
      const kept = [];
      for (const el of document.querySelectorAll(KEPT)) {
        const state = stateOf(el);
        if (state === null || !served.has(el) || served.get(el) === state) continue;
        const { name, type, id } = el;
        kept.push(() => {
          // Only on the same control: a list morphed by position may put another row here.
          if (el.isConnected && el.name === name && el.type === type && el.id === id) {
            setState(el, state);
          }
        });
      }
      return () => kept.forEach((restore) => restore());
    }

    const KEPT = "input, textarea, select, details";

    // A control's state as a string (null: one the user does not set).
    function stateOf(el) {
      if (el instanceof HTMLDetailsElement) return el.open ? "open" : "";
      if (el instanceof HTMLSelectElement) return JSON.stringify(chosen(el));
      if (el instanceof HTMLTextAreaElement) return el.value;
      if (!(el instanceof HTMLInputElement) || UNTYPED.includes(el.type)) return null;
      if (el.type === "checkbox" || el.type === "radio") return el.checked ? "checked" : "";
      return el.value;
    }

    function setState(el, state) {
      if (el instanceof HTMLDetailsElement) el.open = state === "open";
      else if (el instanceof HTMLSelectElement) choose(el, JSON.parse(state));
      else if (el.type === "checkbox" || el.type === "radio") el.checked = state === "checked";
      else el.value = state;
    }

    // The values of a <select>'s chosen options: the options, wherever a morph puts them.
    function chosen(select) {
      return [...select.options].filter((o) => o.selected).map((o) => o.value);
    }

    // Chooses the options of these values (each value one option, the first not chosen yet),
    // and only these; a choice none of whose options is left keeps the server's.
    function choose(select, values) {
      const options = [...select.options];
      if (values.length > 0 && !values.some((v) => options.some((o) => o.value === v))) return;
      const left = [...values];
      for (const option of options) {
        const at = left.indexOf(option.value);
        if (at >= 0) left.splice(at, 1);
        option.selected = at >= 0;
      }
    }

    // Notes the state of each control and <details> under `root` as what the server rendered:
    // on load, and after a morph, which gave each the server's state. All but the `focused`
    // control's, whose value the morph left as the user has it: its server's state is the one
    // `rendered` when the user has that too, else it stays what it was (the user's text typed
    // during the morph is never taken for the server's, and is kept by the next morph).
    function noteServed(root = document, focused = null, rendered = null) {
      for (const el of root.querySelectorAll(KEPT)) {
        let state = stateOf(el);
        if (el === focused && rendered !== null && state !== rendered && served.has(el)) {
          state = served.get(el);
        }
        if (state !== null) served.set(el, state);
      }
    }

    // Follows a redirect, or shows the page re-rendered after the action. `order`: when its
    // request was sent (see sentAll); `form`: the form submitted, if any.
    function apply(answer, order = ++sentAll, form = null) {
      if (order <= leftAt) return; // sent before the user left for another page
      const target = answer.redirect ? new URL(answer.redirect.url, location.href) : null;
      if (target && target.protocol !== "http:" && target.protocol !== "https:") {
        // (a javascript: URL would run in the page; without JavaScript the browser ignores it)
        console.error("actionkit: not following a redirect to", answer.redirect.url);
        return;
      }
      // A redirect to the page already shown adds no history entry.
      const here = !target || target.pathname + target.search === pagePath();
      if (target && (target.origin !== location.origin || answer.html == null)) {
        location.assign(target.href);
        return;
      }
      if (answer.html == null) return;
      const doc = new DOMParser().parseFromString(answer.html, "text/html");
      if (order < shownAll || (!target && answer.url != null && answer.url !== pagePath())) {
        // An action sent later was answered first, or the user has left the page the answer
        // was rendered for: this page may predate what the page shown shows. A failed form
        // still shows its errors; else the page shown is loaded again.
        const fresh = form && form.isConnected && counterpart(form, doc);
        if (answer.failed && fresh && window.Idiomorph) {
          morphInto(form, fresh);
        } else if (here) refreshPage();
        else location.assign(target.href);
        return;
      }
      shownAll = order;
      if (here && !target) {
        addStyles(doc);
        morph(doc);
        return;
      }
      // A page with scripts or style sheets of its own is loaded, as a redirect without
      // JavaScript is (a form's answer followed to the page it posted to is shown as is).
      if (!here && !answer.redirect.posted && !sameAssets(doc)) {
        location.assign(target.href);
        return;
      }
      const method = answer.redirect.type === "replace" || here ? "replaceState" : "pushState";
      const state = mark(method === "replaceState" ? history.state : null, pathOf(target));
      history[method](state, "", target.href);
      if (!here) navigated = true;
      shownPath = pagePath();
      morph(doc, { navigation: true, keep: here });
      const hash = decodeURIComponent(target.hash.slice(1));
      const anchor = hash && document.getElementById(hash);
      if (anchor) anchor.scrollIntoView();
      else window.scrollTo(0, 0);
    }

    // The form of the parsed page `doc` that is `form` of the document: the one of the same id
    // (getAttribute: a field named "id" shadows form.id), or for a form without one, the one
    // with the same fields, by its place among those (several: the rows of a list); or none.
    function counterpart(form, doc) {
      const id = form.getAttribute("id");
      if (id) {
        const fresh = doc.getElementById(id);
        return fresh instanceof HTMLFormElement ? fresh : null;
      }
      const fields = (f) =>
        JSON.stringify([...f.querySelectorAll("[name]")].map((el) => el.getAttribute("name")));
      const mine = fields(form);
      const alike = (root) =>
        [...root.querySelectorAll("form:not([id])")].filter((f) => fields(f) === mine);
      const shown = alike(document);
      const rendered = alike(doc);
      return shown.length === rendered.length ? rendered[shown.indexOf(form)] : null;
    }

    function pathOf(url) {
      return url.pathname + url.search;
    }

    // Loads the page shown again and morphs it in (after answers that came out of order).
    async function refreshPage() {
      const order = ++sentAll;
      started();
      try {
        const response = await fetch(location.href, {
          headers: { Accept: "text/html" },
          cache: "no-store",
        });
        if (order <= leftAt) return;
        if (response.redirected) {
          location.assign(response.url); // the page moved: go where the server says
          return;
        }
        const html = await response.text();
        if (!response.ok || order < shownAll || order <= leftAt) return;
        shownAll = order;
        morph(html);
      } catch (error) {
        console.error("actionkit: loading the page again failed", error);
      } finally {
        ended();
      }
    }

    // `state` (a history entry's) marked as made by this document for the page at `path`.
    function mark(state, path) {
      const own = state && typeof state === "object" ? state : {};
      return { ...own, actionkit: { doc: docId, path } };
    }

    function isOurs(state) {
      return !!state && typeof state === "object" && !!state.actionkit;
    }

    // -- pending state ------------------------------------------------------------------------

    function markBusy(el) {
      const entry = busy.get(el);
      if (entry) {
        entry.count += 1;
        return;
      }
      const isControl = el instanceof HTMLButtonElement || el instanceof HTMLInputElement;
      const fresh = { count: 1, isControl, disabled: isControl && el.disabled, label: null };
      busy.set(el, fresh);
      showBusy(el, fresh);
    }

    function unmarkBusy(el) {
      const entry = busy.get(el);
      if (!entry || --entry.count > 0) return;
      busy.delete(el);
      hideBusy(el, entry);
    }

    // Shows one element as pending. Called again after a morph, which puts the server's
    // attributes and label back: the label then shown is the one to restore afterwards.
    function showBusy(el, entry) {
      el.setAttribute("aria-busy", "true");
      el.setAttribute("data-pending", "");
      if (!entry.isControl) return;
      // A disabled submitter cannot be clicked twice by an impatient user.
      el.disabled = true;
      const text = el.dataset.pendingText;
      if (text == null) return;
      if (el instanceof HTMLInputElement) {
        if (el.value !== text) {
          entry.label = el.value;
          el.value = text;
        }
      } else if (el.textContent !== text) {
        // Keep the nodes themselves: a label may hold markup (an icon, a count).
        entry.label = [...el.childNodes];
        el.textContent = text;
      }
    }

    function hideBusy(el, entry) {
      el.removeAttribute("aria-busy");
      el.removeAttribute("data-pending");
      if (!entry.isControl) return;
      el.disabled = entry.disabled;
      if (entry.label === null) return;
      if (el instanceof HTMLInputElement) el.value = entry.label;
      else el.replaceChildren(...entry.label);
    }

    // Back/forward cache: a page restored with a submission in flight must not stay disabled.
    window.addEventListener("pageshow", (event) => {
      if (!event.persisted) return;
      for (const [el, entry] of [...busy]) {
        busy.delete(el);
        hideBusy(el, entry);
      }
      forms = new WeakMap();
    });

    // Optimistic UI: show the submitted values at once; returns the rollback.
    function showOptimistic(form, data) {
      const elements = [...form.querySelectorAll("[data-optimistic]")];
      const formId = form.getAttribute("id"); // (a field named "id" shadows form.id)
      if (formId) {
        const selector = `[data-optimistic][data-optimistic-for="${CSS.escape(formId)}"]`;
        elements.push(...document.querySelectorAll(selector));
      }
      const shown = [];
      for (const el of elements) {
        const values = data.getAll(el.dataset.optimistic).filter((v) => typeof v === "string");
        if (values.length === 0) continue;
        const text = values.join(", ");
        shown.push([el, el.textContent, text]);
        el.textContent = text;
      }
      return () => {
        // Only where the value is still ours: a later answer may have replaced it since.
        for (const [el, before, text] of shown) {
          if (el.textContent === text) el.textContent = before;
        }
      };
    }

    // What the user typed in a form, to put back after a failed submission's morph.
    function snapshot(form) {
      const values = new Map();
      for (const el of ELEMENTS.call(form)) {
        if (el instanceof HTMLInputElement && (el.type === "checkbox" || el.type === "radio")) {
          values.set(el, ["checked", el.checked]);
        } else if (el instanceof HTMLSelectElement) {
          values.set(el, ["selected", chosen(el)]);
        } else if (
          (el instanceof HTMLInputElement &&
            !UNTYPED.includes(el.type)) ||
          el instanceof HTMLTextAreaElement
        ) {
          values.set(el, ["value", el.value]);
        }
      }
      return () => {
        for (const [el, [kind, value]] of values) {
          if (!el.isConnected) continue;
          if (kind === "selected") choose(el, value);
          else el[kind] = value;
        }
      };
    }

    // Returns false when a listener called preventDefault() (events are cancelable).
    function emit(target, name, detail) {
      return (target.isConnected ? target : document).dispatchEvent(
        new CustomEvent("actionkit:" + name, { bubbles: true, cancelable: true, detail }),
      );
    }

    // An action's error answer (a 404 after a post was deleted elsewhere, a 500) is shown in the
    // form's [data-action-error] element, made when the form has none; a listener of
    // actionkit:error that calls preventDefault() shows it its own way instead.
    function showError(form, error) {
      if (!form.isConnected) return;
      let box = form.querySelector("[data-action-error]");
      if (!box) {
        box = document.createElement("p");
        box.setAttribute("data-action-error", "");
        box.setAttribute("data-made", "");
        form.append(box);
      }
      box.setAttribute("role", "alert");
      box.textContent = error.message;
      box.hidden = false;
    }

    function clearError(form) {
      const box = form.isConnected && form.querySelector("[data-action-error]");
      if (!box) return;
      if (box.hasAttribute("data-made")) box.remove();
      else box.textContent = "";
    }

    // -- forms --------------------------------------------------------------------------------

    // The action a form submits; the last field wins: the clicked button's name comes after the
    // form's own hidden field, as in Next.js. An image button sends its name with ".x" and ".y".
    function actionOf(data, submitter) {
      const image =
        submitter instanceof HTMLInputElement && submitter.type === "image" && submitter.name;
      let id = null;
      for (const [field] of data) {
        const name = image && [image + ".x", image + ".y"].includes(field) ? image : field;
        if (name.startsWith(ACTION_FIELD_PREFIX)) id = name.slice(ACTION_FIELD_PREFIX.length);
      }
      return id;
    }

    // A submission is decided after every listener of the page has run, wherever and whenever
    // it was added (on window, or on document after this script, as Turbo does it): one that
    // calls preventDefault() cancels it, as it does a plain form's. A capturing listener, the
    // first to run, adds the deciding one again at each dispatch: the last listener of window,
    // the last target of the bubbling event.
    window.addEventListener(
      "submit",
      () => {
        window.removeEventListener("submit", decide);
        window.addEventListener("submit", decide);
      },
      true,
    );

    function decide(event) {
      const form = event.target;
      if (event.defaultPrevented || !(form instanceof HTMLFormElement)) return;
      const submitter = event.submitter || null;
      const attr = (name, formName) =>
        (submitter && submitter.getAttribute(formName)) || form.getAttribute(name);
      if ((attr("method", "formmethod") || "get").toLowerCase() !== "post") return;
      // A form aimed at another window or another site is the browser's business.
      const target = attr("target", "formtarget");
      if (target && target !== "_self") return;
      // getAttribute, not form.action: a field named "action" would shadow the property.
      const action =
        submitter && submitter.hasAttribute("formaction")
          ? submitter.getAttribute("formaction")
          : form.getAttribute("action");
      const url = new URL(action || location.href, document.baseURI);
      if (url.origin !== location.origin) return;
      // What the browser would send and the script cannot: a text/plain body (which the
      // server does not read as an action's), or text in another encoding than UTF-8.
      if (enctypeOf(form, submitter) === "text/plain") return;
      const charset = (form.getAttribute("accept-charset") || "").trim().split(/\s+/)[0];
      if (charset && !/^(utf-?8|unicode-1-1-utf-8)$/i.test(charset)) return;
      const data = new FormData(form, submitter);
      const id = actionOf(data, submitter);
      if (id === null) return;
      event.preventDefault();
      submitForm(form, submitter, data, id, url.href);
    }

    // The encoding a submission by the browser would use: the button's formenctype, else the
    // form's enctype; urlencoded when missing or unknown.
    function enctypeOf(form, submitter) {
      const given =
        submitter && submitter.hasAttribute("formenctype")
          ? submitter.getAttribute("formenctype")
          : form.getAttribute("enctype");
      const type = (given || "").trim().toLowerCase();
      return type === "multipart/form-data" || type === "text/plain"
        ? type
        : "application/x-www-form-urlencoded";
    }

    // The body of a form's submission, encoded as the browser would encode it: a form that is
    // not multipart sends the names of its files, not the files (FormData would send them),
    // and its line breaks as CRLF (a textarea's "a\nb" is "a\r\nb", as in a multipart body).
    function bodyOf(form, submitter, data) {
      if (enctypeOf(form, submitter) === "multipart/form-data") return data;
      const crlf = (text) => text.replace(/\r\n|\r|\n/g, "\r\n");
      const pairs = [...data].map(([name, value]) => [
        crlf(name),
        value instanceof File ? value.name : crlf(value),
      ]);
      return new URLSearchParams(pairs);
    }

    function submitForm(form, submitter, data, id, url) {
      let state = forms.get(form);
      if (!state) {
        state = { sent: 0, applied: 0, pending: 0, controllers: new Set() };
        state.queue = Promise.resolve();
        forms.set(form, state);
      }
      let mode = form.getAttribute("data-concurrency") || "queue";
      if (!CONCURRENCY_MODES.includes(mode)) {
        console.warn(`actionkit: data-concurrency="${mode}" is not one of`, CONCURRENCY_MODES);
        mode = "queue";
      }
      if (mode === "drop" && state.pending > 0) return;
      if (mode === "abort") for (const controller of state.controllers) controller.abort();
      const submission = { number: ++state.sent, controller: new AbortController() };
      state.controllers.add(submission.controller);
      state.pending += 1;
      markBusy(form);
      if (submitter) markBusy(submitter);
      const rollback = showOptimistic(form, data);
      const run = () =>
        transmit(form, submitter, data, id, url, state, submission, rollback).catch((error) =>
          console.error("actionkit: applying the answer failed", error),
        );
      // queue: one after the other, in order; abort and drop: at once.
      if (mode === "queue") state.queue = state.queue.then(run);
      else run();
    }

    async function transmit(form, submitter, data, id, url, state, submission, rollback) {
      const progress = form.querySelector("progress[data-upload-progress]");
      const hasFiles =
        enctypeOf(form, submitter) === "multipart/form-data" &&
        [...data.values()].some((v) => v instanceof File && v.size > 0);
      const onProgress = hasFiles
        ? (loaded, total) => {
            if (progress) {
              progress.max = total;
              progress.value = loaded;
            }
            emit(form, "progress", { loaded, total });
          }
        : null;
      // A form posted to another page (action="/elsewhere") shows that page after it, as
      // without JavaScript: its answer is followed there like a redirect.
      const posted = new URL(url);
      const page = posted.pathname + posted.search;
      const elsewhere = page !== pagePath();
      const headers = {
        [ACTION_ID_HEADER]: id,
        [ACTION_PAGE_HEADER]: elsewhere ? page : pagePath(),
      };
      const order = ++sentAll;
      let response = null;
      let failure = null;
      try {
        const signal = submission.controller.signal;
        const body = bodyOf(form, submitter, data);
        response = await send(url, headers, body, { signal, onProgress });
      } catch (error) {
        failure = error;
      } finally {
        state.pending -= 1;
        state.controllers.delete(submission.controller);
        unmarkBusy(form);
        if (submitter) unmarkBusy(submitter);
      }
      if (failure) {
        rollback();
        if (failure.name === "AbortError") return;
        // Never sent again by itself: the request may have reached the server, and the action
        // run, before the answer was lost (the browser never posts a form twice either).
        if (emit(form, "error", { error: failure, status: 0, answer: null })) {
          showError(form, new Error(NO_ANSWER));
        }
        return;
      }
      // Never apply an answer older than one already applied.
      if (submission.number < state.applied) {
        rollback();
        return;
      }
      state.applied = submission.number;
      const { status, answer } = response;
      if (!isAnswer(answer)) {
        rollback();
        const error = errorOf(status, answer);
        if (emit(form, "error", { error, status, answer })) showError(form, error);
        return;
      }
      clearError(form);
      const followed = { ...answer, redirect: { url: page, type: "push", posted: true } };
      const shown = elsewhere && !answer.redirect ? followed : answer;
      if (answer.failed) {
        rollback();
        // A failed submission never loses what the user typed, even where the page rendered
        // after it does not echo the values back.
        const restore = snapshot(form);
        apply(shown, order, form);
        restore();
      } else {
        apply(shown, order, form);
        // Done: the dialog the user opened for this form closes (close(), not the attribute:
        // a modal's top layer and the page's inertness go with it).
        const dialog = form.isConnected ? form.closest("dialog") : null;
        if (dialog && dialog.open && !dialogServed.get(dialog)) dialog.close();
        if (form.isConnected && form.getAttribute("data-reset") !== "false") {
          HTMLFormElement.prototype.reset.call(form); // (a field named "reset" shadows it)
        }
      }
      emit(form, "result", answer);
    }

    // -- calls from scripts -------------------------------------------------------------------

    /** Runs an action by exposed name or ID with JSON arguments; resolves to its return value. */
    async function call(nameOrId, ...args) {
      const own = Object.prototype.hasOwnProperty.call(exposed, nameOrId);
      const spec = own ? exposed[nameOrId] : { id: nameOrId };
      const headers = {
        [ACTION_ID_HEADER]: spec.id,
        [ACTION_PAGE_HEADER]: pagePath(),
        "Content-Type": "application/json",
      };
      if (spec.token) headers[ACTION_BOUND_HEADER] = spec.token;
      const order = ++sentAll;
      const { status, answer } = await send(location.href, headers, JSON.stringify(args));
      if (!isAnswer(answer)) throw errorOf(status, answer);
      apply(answer, order);
      if (answer.failed) {
        throw new ActionError("The action failed.", { status, code: "failed", answer });
      }
      return answer.result;
    }

    // actionkit.actions.name(...): the actions the page shown exposes (a redirect's target
    // exposes its own), read-only.
    const own = (name) =>
      typeof name === "string" && Object.prototype.hasOwnProperty.call(exposed, name);
    const actions = new Proxy(Object.create(null), {
      get: (_, name) => (own(name) ? (...args) => call(name, ...args) : undefined),
      has: (_, name) => own(name),
      ownKeys: () => Object.keys(exposed),
      getOwnPropertyDescriptor: (_, name) =>
        own(name) ? { value: actions[name], enumerable: true, configurable: true } : undefined,
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
    });

    // Declarative calls: <span data-action-call="increment_views" data-trigger="load"
    // data-args="[3]" data-target="#views"> runs the action and writes its result into #views.
    // While its call is pending the element is busy as a form's submitter is (a button is
    // disabled), and triggering it again does nothing: a double click runs the action once.
    function runCall(el) {
      if (busy.has(el)) return;
      let args;
      try {
        args = JSON.parse(el.dataset.args || "[]");
        if (!Array.isArray(args)) throw new TypeError("data-args must be a JSON array");
      } catch (error) {
        console.error("actionkit: data-args is not a JSON array", el, error);
        emit(el, "error", { error, status: 0, answer: null });
        return;
      }
      markBusy(el);
      call(el.dataset.actionCall, ...args)
        .then((result) => {
          const target = el.dataset.target ? document.querySelector(el.dataset.target) : null;
          if (target) target.textContent = display(result);
          emit(el, "result", { result });
        })
        .catch((error) => {
          emit(el, "error", { error, status: error.status || 0, answer: error.answer || null });
        })
        .finally(() => unmarkBusy(el));
    }

    function display(result) {
      if (result == null) return "";
      return typeof result === "string" ? result : JSON.stringify(result);
    }

    const triggerOf = (el) => el.dataset.trigger || "click";

    // Clicks are delegated, so elements added by a morph need no wiring.
    document.addEventListener("click", (event) => {
      const el = event.target instanceof Element && event.target.closest("[data-action-call]");
      if (!el || triggerOf(el) !== "click") return;
      event.preventDefault(); // a link or a submit button used as a trigger does only this
      runCall(el);
    });

    function wireCalls(root) {
      for (const el of root.querySelectorAll("[data-action-call]")) {
        const trigger = triggerOf(el);
        if (trigger === "load") {
          // Once per page: a morph keeps the element and must not count another view, but a
          // redirect to another page is a new page.
          if (loadedFor.get(el) === shownPath) continue;
          loadedFor.set(el, shownPath);
          runCall(el);
        } else if (trigger === "visible" && !observed.has(el)) {
          observed.add(el);
          observer =
            observer ||
            new IntersectionObserver((entries) => {
              for (const entry of entries) {
                if (!entry.isIntersecting) continue;
                observer.unobserve(entry.target);
                runCall(entry.target);
              }
            });
          observer.observe(el);
        } else if (!["click", "load", "visible"].includes(trigger)) {
          console.warn(`actionkit: data-trigger="${trigger}" is not click, load or visible`, el);
        }
      }
    }

    // -- navigation ---------------------------------------------------------------------------

    // Back or forward to an entry whose page the document does not show (a redirect's target,
    // or the page before it): load it. Moves between anchors of the same page stay as they are.
    // An entry marked as actionkit's shows its own page; an entry an app pushed itself is left
    // to the app, unless a redirect of actionkit put another page in this document.
    window.addEventListener("popstate", (event) => {
      if (pagePath() === shownPath) return;
      if (navigated || isOurs(event.state)) location.reload();
    });

    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", () => {
        noteServed();
        wireCalls(document);
      });
    } else {
      noteServed();
      wireCalls(document);
    }

    return Object.freeze({ version: PROTOCOL_VERSION, call, actions, apply, ActionError });
  }
})();
